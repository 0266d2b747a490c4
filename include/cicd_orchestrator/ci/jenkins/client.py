"""Authentication to Jenkins: a python-jenkins client from the controller's URL, a user and an
API token (sent as HTTP Basic authentication).

The token is registered with the redaction module, never part of a URL, and masked in the
loggers that could see it. Where the settings come from (an Airflow connection) is the
caller's business.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.redact import install_log_filter as install_redaction
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    import jenkins

DEFAULT_TIMEOUT = 15.0
DEFAULT_RETRIES = 2
#: the loggers that may see a token (requests and urllib3 log URLs and headers)
LOGGERS = ("jenkins", "urllib3.connectionpool", "cicd_orchestrator.ci.jenkins")


def install_log_filter() -> None:
    """Mask secrets in the loggers that may see them (idempotent)."""
    install_redaction(LOGGERS)


def check_url(url: str) -> str:
    """The controller URL with a trailing slash; credentials in it are refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the Jenkins URL {redact(url)!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError("the Jenkins URL must not carry credentials: use the login and token")
    return url if url.endswith("/") else url + "/"


def build_client(
    url: str,
    user: str | None,
    token: str | None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> jenkins.Jenkins:
    """A python-jenkins client authenticating as ``user`` with the API ``token``."""
    import jenkins

    register_secret(token)
    install_log_filter()
    if bool(user) != bool(token):
        raise ConfigError("Jenkins needs both a user and an API token (or neither: anonymous)")
    return jenkins.Jenkins(
        check_url(url), username=user, password=token, timeout=timeout, retries=retries
    )

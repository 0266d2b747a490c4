"""Authentication to Jenkins: a python-jenkins client from an Airflow connection or from
explicit settings (a user and an API token, sent as HTTP Basic authentication).

The Airflow connection (``jenkins_default``, type ``jenkins`` or ``http``): the controller's
URL in ``host`` (with scheme and path, e.g. ``https://ci.example.com/jenkins``; a bare host
gets ``https://`` unless the extra ``use_https`` is false, and ``port`` when given), the user
in ``login``, the API token in ``password``. The token is registered with the redaction
module, never part of a URL, and masked in the loggers that could see it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    import jenkins

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0
DEFAULT_RETRIES = 2


class RedactingFilter(logging.Filter):
    """Masks registered secrets in log records (requests and urllib3 log URLs and headers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = ()
        return True


_FILTER = RedactingFilter()


def install_log_filter() -> None:
    """Mask secrets in the loggers that may see them (idempotent)."""
    for name in ("jenkins", "urllib3.connectionpool", "cicd_orchestrator.ci.jenkins"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


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


def _url_of(conn: Any) -> str:
    host = str(conn.host or "").strip()
    if not host:
        raise ConfigError(f"Jenkins connection {conn.conn_id!r} has no host (the controller URL)")
    if "://" not in host:
        extras = conn.extra_dejson or {}
        scheme = conn.schema if conn.schema in ("http", "https") else None
        if scheme is None:
            scheme = "http" if str(extras.get("use_https", True)).lower() == "false" else "https"
        port = f":{conn.port}" if conn.port else ""
        host = f"{scheme}://{host}{port}"
    return host


def client_from_connection(
    conn_id: str, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES
) -> jenkins.Jenkins:
    """A client from the Airflow connection ``conn_id`` (see the module docstring)."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise ConfigError(
            f"Jenkins connection {conn_id!r} cannot be read: {redact(str(exc))}"
        ) from exc
    register_secret(conn.password)
    return build_client(_url_of(conn), conn.login, conn.password, timeout, retries)

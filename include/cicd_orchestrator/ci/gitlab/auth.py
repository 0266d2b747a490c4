"""Authentication to GitLab: the python-gitlab client from a URL and an access token, and git
over HTTPS.

The client authenticates with a personal, project or group access token against a GitLab URL
(``https://gitlab.com`` by default; ``ssl_verify`` may be false or a CA bundle path for a
self-signed instance). It is built with python-gitlab's own retries switched off (the
provider retries whole operations, see ``ratelimit``), and it keeps the headers of the last
error answer per thread (``Retry-After``, ``RateLimit-Reset``) for the back-off. Where the
token comes from (an Airflow connection) is the caller's business.

git gets the token through its environment only (``ci.credentials``): neither the URL nor any
command line carries it. GitLab accepts any user name with an access token; ``oauth2`` also
fits OAuth tokens.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cicd_orchestrator.exceptions import ConfigError, ProviderError
from cicd_orchestrator.redact import install_log_filter as install_redaction
from cicd_orchestrator.redact import register_secret

if TYPE_CHECKING:
    from gitlab import Gitlab

DEFAULT_URL = "https://gitlab.com"
DEFAULT_GIT_USERNAME = "oauth2"
DEFAULT_TIMEOUT = 15.0
#: the loggers that may see a token
LOGGERS = ("gitlab", "urllib3.connectionpool", "cicd_orchestrator.ci.gitlab")


def install_log_filter() -> None:
    """Mask secrets in the loggers that may see them (idempotent)."""
    install_redaction(LOGGERS)


@functools.cache
def _client_class() -> type[Gitlab]:
    import gitlab

    class OrchestratorGitlab(gitlab.Gitlab):
        """python-gitlab without its own retries, remembering the last error's headers."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._answers = threading.local()
            self.session.hooks["response"].append(self._remember)

        def _remember(self, response: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(response, "status_code", 200) >= 400:
                self._answers.headers = dict(response.headers)
            return response

        def last_error_headers(self) -> Mapping[str, str]:
            return dict(getattr(self._answers, "headers", None) or {})

        def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("obey_rate_limit", False)
            kwargs.setdefault("retry_transient_errors", False)
            kwargs.setdefault("max_retries", 0)
            self._answers.headers = None
            return super().http_request(verb, path, *args, **kwargs)

    return OrchestratorGitlab


def token_client(
    token: str,
    url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    ssl_verify: bool | str = True,
) -> Gitlab:
    """A client authenticated with a personal, project or group access token."""
    if not token:
        raise ConfigError("a GitLab client needs an access token")
    register_secret(token)
    install_log_filter()
    cls = _client_class()
    return cls(
        url=(url or DEFAULT_URL).rstrip("/"),
        private_token=token,
        timeout=timeout,
        ssl_verify=ssl_verify,
        per_page=100,
        retry_transient_errors=False,
        keep_base_url=True,
    )


def token_of(client: Gitlab) -> str:
    """The token the client authenticates with."""
    token = client.private_token or client.oauth_token or client.job_token
    if not token:
        raise ProviderError("the GitLab client has no token for git")
    register_secret(token)
    return str(token)

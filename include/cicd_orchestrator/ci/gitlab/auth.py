"""Authentication to GitLab: the python-gitlab client from an Airflow connection, and git over
HTTPS.

The connection (``gitlab_default``, any type: ``http`` or ``gitlab``) carries the GitLab URL in
its host (``https://gitlab.example.com``; ``https://gitlab.com`` when empty) and a personal,
project or group access token in its password; its extras may say ``{"verify": false}`` or a
CA bundle path for a self-signed instance. The client is built with python-gitlab's own
retries switched off (the provider retries whole operations, see ``ratelimit``), and it keeps
the headers of the last error answer per thread (``Retry-After``, ``RateLimit-Reset``) for the
back-off.

git gets the token through its environment only, with the askpass script of the GitHub
provider (it prints ``$CICD_GIT_TOKEN``): neither the URL nor any command line carries it.
GitLab accepts any user name with an access token; ``oauth2`` also fits OAuth tokens.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cicd_orchestrator.ci.github.auth import RedactingFilter, git_credential_env
from cicd_orchestrator.exceptions import ConfigError, ProviderError
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    from gitlab import Gitlab

log = logging.getLogger(__name__)

DEFAULT_URL = "https://gitlab.com"
DEFAULT_GIT_USERNAME = "oauth2"
DEFAULT_TIMEOUT = 15.0

_FILTER = RedactingFilter()


def install_log_filter() -> None:
    """Mask secrets in the loggers that may see them (idempotent)."""
    for name in ("gitlab", "urllib3.connectionpool", "cicd_orchestrator.ci.gitlab"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def gitlab_git_env(token: str, username: str = DEFAULT_GIT_USERNAME) -> dict[str, str]:
    """Environment that lets git authenticate to GitLab with ``token`` over HTTPS."""
    return git_credential_env(token, username)


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


def _connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise ConfigError(
            f"GitLab connection {conn_id!r} cannot be read: {redact(str(exc))}"
        ) from exc


def _url_of(conn: Any) -> str:
    host = str(conn.host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_URL
    if "://" not in host:
        schema = str(conn.schema or "").strip() or "https"
        host = f"{schema if schema in ('http', 'https') else 'https'}://{host}"
        if conn.port:
            host = f"{host}:{int(conn.port)}"
    return host.removesuffix("/api/v4")


def client_from_connection(conn_id: str, timeout: float = DEFAULT_TIMEOUT) -> Gitlab:
    """A client from an Airflow connection: host = GitLab URL, password = access token."""
    conn = _connection(conn_id)
    token = str(conn.password or "")
    register_secret(token)
    if not token:
        raise ConfigError(
            f"GitLab connection {conn_id!r} has no token (put the access token in its password)"
        )
    extras = conn.extra_dejson or {}
    verify = extras.get("verify", True)
    return token_client(token, _url_of(conn), timeout, verify if verify is not None else True)


def token_of(client: Gitlab) -> str:
    """The token the client authenticates with."""
    token = client.private_token or client.oauth_token or client.job_token
    if not token:
        raise ProviderError("the GitLab client has no token for git")
    register_secret(token)
    return str(token)

"""Authentication to GitHub: PyGithub clients with the orchestrator's settings.

A client authenticates with a token (personal access or installation token) or as an
installation of a GitHub App; GitHub Enterprise is a ``base_url``. Clients are built without
PyGithub's own retries (the provider retries whole operations, see ``ratelimit``). Where the
credentials come from (an Airflow connection) is the caller's business: the provider is given
a client, or a function that makes one.

git gets the token through its environment only (``ci.credentials``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cicd_orchestrator.ci.credentials import DEFAULT_USERNAME
from cicd_orchestrator.exceptions import ProviderError
from cicd_orchestrator.redact import install_log_filter as install_redaction
from cicd_orchestrator.redact import register_secret

if TYPE_CHECKING:
    from github import Github

DEFAULT_GIT_USERNAME = DEFAULT_USERNAME
DEFAULT_TIMEOUT = 15
#: the loggers that may see a token (PyGithub logs requests and response bodies at DEBUG)
LOGGERS = ("github.Requester", "github.GithubRetry", "cicd_orchestrator.ci.github")


def install_log_filter() -> None:
    """Mask secrets in the loggers that may see them (idempotent)."""
    install_redaction(LOGGERS)


def build_client(
    auth: Any, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Github:
    """A PyGithub client with the orchestrator's settings (no built-in retries or pauses:
    the provider backs off per operation)."""
    from github import Github

    kwargs: dict[str, Any] = {
        "auth": auth,
        "timeout": int(timeout) if float(timeout).is_integer() else timeout,
        "per_page": 100,
        "retry": None,
        "seconds_between_requests": None,
        "seconds_between_writes": None,
    }
    if base_url:
        kwargs["base_url"] = base_url.rstrip("/")
    return Github(**kwargs)


def token_client(
    token: str, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Github:
    """A client authenticated with a personal access or installation token."""
    from github import Auth

    register_secret(token)
    return build_client(Auth.Token(token), base_url, timeout)


def app_client(
    app_id: int | str,
    private_key: str,
    installation_id: int,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Github:
    """A client authenticated as an installation of a GitHub App."""
    from github import Auth

    register_secret(private_key)
    auth = Auth.AppAuth(app_id, private_key).get_installation_auth(int(installation_id))
    return build_client(auth, base_url, timeout)


def token_of(client: Github) -> str:
    """The token the client authenticates with (an installation token is refreshed)."""
    auth = client.requester.auth
    token = getattr(auth, "token", None) if auth is not None else None
    if not isinstance(token, str) or not token:
        raise ProviderError(
            "the GitHub client has no token for git (use a token or a GitHub App installation)"
        )
    register_secret(token)
    return token

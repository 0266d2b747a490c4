"""Authentication to GitHub: the API client from an Airflow connection, and git over HTTPS.

The API client comes from the GitHub provider's ``GithubHook`` (a token in the connection's
password, GitHub App credentials in its extras, a GitHub Enterprise base URL in its host); the
orchestrator rebuilds it with its own timeout and without PyGithub's own retries (the
provider retries whole operations, see ``ratelimit``).

git gets the token through its environment only: ``GIT_ASKPASS`` names a fixed script that
prints ``$CICD_GIT_TOKEN`` when git asks for a password. Neither the URL nor any command line
nor the script carries the token, and credential helpers are switched off so that git does
not store it.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cicd_orchestrator.exceptions import ConfigError, ProviderError
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    from github import Github

log = logging.getLogger(__name__)

TOKEN_ENV = "CICD_GIT_TOKEN"
USERNAME_ENV = "CICD_GIT_USERNAME"
DEFAULT_GIT_USERNAME = "x-access-token"
DEFAULT_TIMEOUT = 15

ASKPASS_SCRIPT = f"""#!/bin/sh
# git credential prompt helper of the CI/CD Failure Orchestrator: it answers git's prompts
# from the environment, so the token never appears in a URL or on a command line.
case "$1" in
  Username*|username*) printf '%s\\n' "${{{USERNAME_ENV}:-{DEFAULT_GIT_USERNAME}}}" ;;
  *) printf '%s\\n' "${{{TOKEN_ENV}}}" ;;
esac
"""

_lock = threading.Lock()


def askpass_path() -> Path:
    """The askpass script (written once per user into a private folder; it holds no secret)."""
    folder = Path(tempfile.gettempdir()) / f"cicd-orchestrator-{os.getuid()}"
    script = folder / "git-askpass.sh"
    with _lock:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o022:
            raise ProviderError(f"{folder} is not a private folder of this user")
        try:
            current = script.read_text(encoding="utf-8")
        except OSError:
            current = ""
        if current != ASKPASS_SCRIPT:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".askpass.")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(ASKPASS_SCRIPT)
            os.chmod(tmp, 0o700)
            os.replace(tmp, script)
    return script


def git_credential_env(token: str, username: str = DEFAULT_GIT_USERNAME) -> dict[str, str]:
    """Environment that lets git authenticate with ``token`` over HTTPS."""
    register_secret(token)
    return {
        "GIT_ASKPASS": str(askpass_path()),
        TOKEN_ENV: token,
        USERNAME_ENV: username,
        "GIT_TERMINAL_PROMPT": "0",
        # no credential helper may store the token (an empty value resets the list)
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
    }


class RedactingFilter(logging.Filter):
    """Masks registered secrets in log records (PyGithub logs response bodies at DEBUG)."""

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
    for name in ("github.Requester", "github.GithubRetry", "cicd_orchestrator.ci.github"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


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


def client_from_connection(conn_id: str, timeout: float = DEFAULT_TIMEOUT) -> Github:
    """A client from an Airflow connection of type ``github`` (through ``GithubHook``)."""
    from airflow.providers.github.hooks.github import GithubHook

    try:
        hook = GithubHook(github_conn_id=conn_id)
    except ValueError as exc:
        raise ConfigError(f"GitHub connection {conn_id!r}: {redact(str(exc))}") from exc
    except Exception as exc:
        raise ConfigError(
            f"GitHub connection {conn_id!r} cannot be read: {redact(str(exc))}"
        ) from exc
    conn = hook.get_connection(conn_id)
    register_secret(conn.password)
    extras = conn.extra_dejson or {}
    register_secret(extras.get("private_key"))
    base = hook.get_conn()
    requester = base.requester
    return build_client(requester.auth, requester.base_url, timeout)


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

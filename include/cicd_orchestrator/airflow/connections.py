"""API clients from Airflow connections: the orchestrator's ``Clients`` in Airflow.

``make_provider(name, config, AirflowClients())`` gives each provider a function that makes its
client from the configured connection at the provider's first use:

- GitHub (``github_default``, type ``github``): through the GitHub provider's ``GithubHook``,
  a token in the password or GitHub App credentials (``app_id``, ``installation_id``,
  ``private_key``) in the extras; GitHub Enterprise's API URL in the host.
- GitLab (``gitlab_default``, any type: ``http`` or ``gitlab``): the GitLab URL in the host
  (``https://gitlab.example.com``; ``https://gitlab.com`` when empty; a bare host gets the
  schema and port of the connection), a personal, project or group access token in the
  password; the extra ``verify`` may be false or a CA bundle path for a self-signed instance.
- Jenkins (``jenkins_default``, type ``jenkins`` or ``http``): the controller's URL in the host
  (with scheme and path, e.g. ``https://ci.example.com/jenkins``; a bare host gets
  ``https://`` unless the extra ``use_https`` is false, and the port when given), the user in
  the login, the API token in the password.
- A language model (``llm_conn_id``): an agent of the common-ai provider's hook of the
  connection (any ``pydanticai*`` type).

Every secret read is registered with the redaction module, and the loggers that could see it
are masked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cicd_orchestrator.exceptions import ConfigError
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    from github import Github
    from gitlab import Gitlab
    from jenkins import Jenkins

    from cicd_orchestrator.agents import PatchAgent


class AirflowClients:
    """The orchestrator's ``Clients`` (``ci.registry``), read from Airflow connections."""

    def github(self, conn_id: str) -> Github:
        """A PyGithub client from a connection of type ``github`` (through ``GithubHook``)."""
        from airflow.providers.github.hooks.github import GithubHook

        from cicd_orchestrator.ci.github.auth import build_client, install_log_filter

        install_log_filter()
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
        register_secret((conn.extra_dejson or {}).get("private_key"))
        requester = hook.get_conn().requester
        return build_client(requester.auth, requester.base_url)

    def gitlab(self, conn_id: str) -> Gitlab:
        """A python-gitlab client: host = the GitLab URL, password = an access token."""
        from cicd_orchestrator.ci.gitlab.auth import token_client

        conn = _connection(conn_id, "GitLab")
        token = str(conn.password or "")
        register_secret(token)
        if not token:
            raise ConfigError(
                f"GitLab connection {conn_id!r} has no token (put the access token in its password)"
            )
        verify = (conn.extra_dejson or {}).get("verify", True)
        return token_client(token, _gitlab_url(conn), ssl_verify=True if verify is None else verify)

    def jenkins(self, conn_id: str) -> Jenkins:
        """A python-jenkins client: host = the controller's URL, login and password = the user
        and an API token."""
        from cicd_orchestrator.ci.jenkins.client import build_client

        conn = _connection(conn_id, "Jenkins")
        register_secret(conn.password)
        return build_client(_jenkins_url(conn), conn.login, conn.password)

    def llm_agent(self, conn_id: str, instructions: str) -> PatchAgent:
        """A pydantic-ai agent on the model of a common-ai connection, answering text."""
        from airflow.providers.common.ai.hooks.pydantic_ai import PydanticAIHook

        hook = PydanticAIHook.get_hook(conn_id)
        agent: PatchAgent = hook.create_agent(output_type=str, instructions=instructions)
        return agent


def _connection(conn_id: str, service: str) -> Any:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise ConfigError(
            f"{service} connection {conn_id!r} cannot be read: {redact(str(exc))}"
        ) from exc


def _gitlab_url(conn: Any) -> str:
    from cicd_orchestrator.ci.gitlab.auth import DEFAULT_URL

    host = str(conn.host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_URL
    if "://" not in host:
        schema = str(conn.schema or "").strip() or "https"
        host = f"{schema if schema in ('http', 'https') else 'https'}://{host}"
        if conn.port:
            host = f"{host}:{int(conn.port)}"
    return host.removesuffix("/api/v4")


def _jenkins_url(conn: Any) -> str:
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

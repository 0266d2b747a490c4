"""Worlds for the provider tests: an example repository materialised in a local provider (a
green commit, then a failing head), served by a CI-compatible server, and the provider under
test built against that server.

``start_world(kind, folder)`` starts one (a copy of the example materialised once per process,
so its CI does not run again for each world): ``local`` (the local provider itself), ``github``,
``gitlab`` (their compatible servers in front of the local provider) or ``jenkins`` (the
Jenkins-compatible server building the repository, the local provider as its git hosting).
A world knows the provider's ids of the example's runs, the URL git reaches the repository
at, and the credential the server accepts; ``stop()`` stops its server.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from cicd_devkit.airflow_stack import EXAMPLES
from cicd_devkit.scenarios import (
    MaterializedScenario,
    Template,
    copy_template,
    materialize_template,
)
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.ci.retry import BackoffPolicy
from cicd_orchestrator.constants import RunStatus
from cicd_orchestrator.models import Run

if TYPE_CHECKING:
    from cicd_devkit.servers.github import GitHubServer
    from cicd_devkit.servers.gitlab import GitLabServer
    from cicd_devkit.servers.jenkins import JenkinsServer
    from cicd_orchestrator.ci.github.provider import GitHubProvider
    from cicd_orchestrator.ci.gitlab.provider import GitLabProvider
    from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider

REPO = "acme/shipping"
EXAMPLE = EXAMPLES / "lint-failure"
#: the example's workflow (a push of a commit without it starts no run)
EXAMPLE_WORKFLOW = ".github/workflows/ci.yml"
KINDS = ("local", "github", "gitlab", "jenkins")
GITHUB_TOKEN = "ghp_" + "T0kenForTheLoopbackServer0000000001"
GITLAB_TOKEN = "glpat-" + "L00pbackServerT0ken00001"
JENKINS_USER = "orchestrator"
JENKINS_TOKEN = "11" + "a7c0ffee5ecret0f7heJenkinsApiT0ken"
#: the key the markers of the tests' writes are signed with (a deployment's ``marker_key``)
MARKER_KEY = "test-marker-key-" + "0123456789abcdef"
#: the single (not multibranch) Pipeline job of the Jenkins world, building ``main``
STANDALONE = "shipping-main"
#: a back-off short enough for tests
FAST = BackoffPolicy(max_tries=4, base_delay=0.05, max_delay=0.2, max_wait=5.0)

P = TypeVar("P")


def signed_marker(kind: str, session_id: str, attempt: int | None = None) -> str:
    """A marker signed with the tests' ``MARKER_KEY`` (what publishing writes)."""
    from cicd_orchestrator.publish.markers import marker, signing_key

    return marker(signing_key(MARKER_KEY), session_id, kind, attempt)


@dataclass
class World:
    """The local provider with the materialised example, and the provider under test."""

    kind: ClassVar[str] = "local"
    local: LocalProvider
    made: MaterializedScenario
    tmp: Path
    #: the waits of the providers' back-off, in order
    sleeps: list[float] = field(default_factory=list)

    def provider(self, **options: Any) -> CIProvider:
        return self.local

    def as_user(self, login: str) -> CIProvider:
        """A provider of the same hosting that writes as another user, ``login`` (somebody
        else with access to the repository)."""
        return LocalProvider(self.local.root, identity=login)

    def stop(self) -> None:
        """Stop the world's server (the local provider needs nothing)."""

    # ------------------------------------------------------------------ the example
    @property
    def head_sha(self) -> str:
        return self.made.head_sha

    @property
    def green_sha(self) -> str:
        return self.made.commits[0][1]

    @property
    def head_run_id(self) -> int:
        """The provider's id of the failed run of the head."""
        assert self.made.head_run is not None
        return self.made.head_run.id

    @property
    def green_run_id(self) -> int:
        """The provider's id of the green run of the first commit."""
        return self.made.runs[self.made.commits[0][0]][0]

    @property
    def remote_url(self) -> str:
        """The URL git reaches the repository at through the provider."""
        return str(self.local.repo_path(REPO))

    @property
    def git_token(self) -> str | None:
        """The token git is given through the provider (None: no credential)."""
        return None

    # ------------------------------------------------------------------ waiting
    def sleep(self, seconds: float) -> None:
        """The providers' sleep: recorded, then slept."""
        self.sleeps.append(seconds)
        time.sleep(seconds)

    def wait_run(self, provider: CIProvider, run_id: int, timeout: float = 60) -> Run:
        """The run once its latest attempt is completed."""
        deadline = time.monotonic() + timeout
        while (run := provider.get_run(REPO, run_id)).status is not RunStatus.COMPLETED:
            assert time.monotonic() < deadline, f"run {run_id} is still {run.status.value}"
            time.sleep(0.3)
        return run


@dataclass
class HostedWorld(World):
    """A hosting's provider (a token) in front of its compatible server."""

    token: ClassVar[str]
    server: Any = None

    def hosted_provider(self, provider: Callable[..., P], client: Any, options: Any) -> P:
        """``provider`` with ``client``, a short timeout and back-off, and ``options``."""
        settings: dict[str, Any] = {
            "client": client,
            "timeout": 1.0,
            "backoff": FAST,
            "sleep": self.sleep,
        }
        settings.update(options)
        return provider(**settings)

    def stop(self) -> None:
        self.server.stop()

    @property
    def remote_url(self) -> str:
        return f"{self.server.url}/{REPO}.git"

    @property
    def git_token(self) -> str | None:
        return self.token


@dataclass
class GitHubWorld(HostedWorld):
    """The GitHub provider (PyGithub) in front of the GitHub-compatible server."""

    kind: ClassVar[str] = "github"
    token: ClassVar[str] = GITHUB_TOKEN

    @property
    def github(self) -> GitHubServer:
        return cast("GitHubServer", self.server)

    def provider(self, **options: Any) -> GitHubProvider:
        from cicd_orchestrator.ci.github.auth import token_client
        from cicd_orchestrator.ci.github.provider import GitHubProvider

        client = token_client(GITHUB_TOKEN, self.github.api_url, timeout=1.0)
        return self.hosted_provider(GitHubProvider, client, options)

    def as_user(self, login: str) -> GitHubProvider:
        from cicd_orchestrator.ci.github.auth import token_client
        from cicd_orchestrator.ci.github.provider import GitHubProvider

        client = token_client(self.github.add_user(login), self.github.api_url, timeout=1.0)
        return self.hosted_provider(GitHubProvider, client, {})


@dataclass
class GitLabWorld(HostedWorld):
    """The GitLab provider (python-gitlab) in front of the GitLab-compatible server."""

    kind: ClassVar[str] = "gitlab"
    token: ClassVar[str] = GITLAB_TOKEN

    @property
    def gitlab(self) -> GitLabServer:
        return cast("GitLabServer", self.server)

    def provider(self, **options: Any) -> GitLabProvider:
        from cicd_orchestrator.ci.gitlab.auth import token_client
        from cicd_orchestrator.ci.gitlab.provider import GitLabProvider

        client = token_client(GITLAB_TOKEN, self.gitlab.url, timeout=1.0)
        return self.hosted_provider(GitLabProvider, client, options)

    def as_user(self, login: str) -> GitLabProvider:
        from cicd_orchestrator.ci.gitlab.auth import token_client
        from cicd_orchestrator.ci.gitlab.provider import GitLabProvider

        client = token_client(self.gitlab.add_user(login), self.gitlab.url, timeout=1.0)
        return self.hosted_provider(GitLabProvider, client, {})


@dataclass
class JenkinsWorld(World):
    """The Jenkins provider (python-jenkins, a user and an API token) in front of the
    Jenkins-compatible server, publishing through the local provider as its git hosting. Its
    run ids are the queue ids of the builds."""

    kind: ClassVar[str] = "jenkins"
    server: JenkinsServer | None = None

    @property
    def jenkins(self) -> JenkinsServer:
        assert self.server is not None
        return self.server

    def provider(self, **options: Any) -> JenkinsProvider:
        from cicd_orchestrator.ci.jenkins.provider import JenkinsProvider

        settings: dict[str, Any] = {
            "hosting": self.local,
            "url": self.jenkins.url,
            "user": JENKINS_USER,
            "token": JENKINS_TOKEN,
            "timeout": 5.0,
            "poll_interval": 0.05,
        }
        settings.update(options)
        return JenkinsProvider(**settings)

    def stop(self) -> None:
        self.jenkins.stop()

    def queue_id(self, local_run_id: int, attempt: int = 1) -> int:
        build = self.jenkins.build_of(REPO, local_run_id, attempt)
        assert build is not None, f"no build of run {local_run_id}"
        return build.queue_id

    @property
    def head_run_id(self) -> int:
        return self.queue_id(super().head_run_id)

    @property
    def green_run_id(self) -> int:
        return self.queue_id(super().green_run_id)


@functools.cache
def shared_template() -> Template:
    """The example materialised as ``REPO`` once in this process (removed at its exit)."""
    folder = Path(tempfile.mkdtemp(prefix="cicd-world-"))
    atexit.register(shutil.rmtree, folder, True)
    return materialize_template(EXAMPLE, folder / "ci", REPO)


def start_world(kind: str, folder: Path) -> World:
    """A world of ``kind`` (one of ``KINDS``) under ``folder``, its server started."""
    if kind not in KINDS:
        raise ValueError(f"unknown world {kind!r}; known: {', '.join(KINDS)}")
    local, made = copy_template(shared_template(), folder / "ci")
    if kind == "local":
        return World(local, made, folder)
    if kind == "github":
        from cicd_devkit.servers.github import GitHubServer

        return GitHubWorld(local, made, folder, server=GitHubServer(local, GITHUB_TOKEN).start())
    if kind == "gitlab":
        from cicd_devkit.servers.gitlab import GitLabServer

        return GitLabWorld(local, made, folder, server=GitLabServer(local, GITLAB_TOKEN).start())
    if kind == "jenkins":
        from cicd_devkit.servers.jenkins import JenkinsServer

        server = JenkinsServer(
            local, {JENKINS_USER: JENKINS_TOKEN}, standalone={STANDALONE: (REPO, "main")}
        )
        return JenkinsWorld(local, made, folder, server=server.start())
    raise AssertionError(kind)

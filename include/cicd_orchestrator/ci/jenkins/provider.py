"""The Jenkins provider: Jenkins Pipeline builds behind ``CIProvider``, through python-jenkins.

CI operations go to Jenkins (see ``mapping`` for how builds become runs, attempts and jobs):

- ``list_runs`` / ``list_failed_runs``: the builds of the repository's job (every branch of
  a multibranch project, or a single Pipeline job), one request with a ``tree`` query;
- ``get_run``: a chain of builds as a run; the stages of the attempt's build
  (``wfapi/describe``, the Pipeline stage view) as jobs, their flow nodes as steps;
- ``open_job_log``: the build's ``consoleText`` streamed into a temporary file, cut down to
  the stage's lines (``[Pipeline] { (Stage)`` ... ``[Pipeline] // stage`` plus the build's
  closing error lines);
- ``rerun_failed_jobs``: a rebuild of the run's latest build (Pipeline's
  ``replay/rebuild``, or the Rebuilder plugin's ``rebuild``): Jenkins reruns the whole
  Pipeline, a new build whose cause names the original, i.e. the run's next attempt;
- ``ref_status``: the combined state of the builds of a commit (their
  ``lastBuiltRevision.SHA1``) across every branch job.

Every git-hosting operation (default and protected branches, ``git_remote``, ``identity``,
``push_branch``, pull requests and their closing, commit statuses, comments, issues, the
author of a commit) is delegated to the
``hosting`` provider the job builds from (the GitHub provider, or the local provider in
tests): repairs are published through the git hosting and Jenkins builds the pushed branch.

The client is given to the provider, made from the controller's URL, a user and an API
token, or made at first use by a function it is given (``make_provider`` passes one that
reads the configured connection). The user and API token travel as HTTP Basic authentication
only (never in a URL, a command line or a log; both are registered with the redaction
module).
"""

from __future__ import annotations

import contextlib
import functools
import html
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from cicd_orchestrator.ci.base import CIProvider, LazyClient, combine_states, run_state
from cicd_orchestrator.ci.jenkins.client import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    build_client,
    install_log_filter,
)
from cicd_orchestrator.ci.jenkins.mapping import (
    BUILD_TREE,
    MULTIBRANCH_CLASSES,
    WHOLE_BUILD_NODE,
    BuildChain,
    BuildRef,
    branch_of_job,
    build_origin,
    build_refs,
    chains,
    split_job_id,
    stage_jobs,
    stage_lines,
    stage_occurrence,
    to_run,
)
from cicd_orchestrator.constants import STATUS_CONTEXT, CombinedState, Conclusion, RunStatus
from cicd_orchestrator.exceptions import ProviderError, UnknownRepositoryError, UnknownRunError
from cicd_orchestrator.git import GitRemote
from cicd_orchestrator.models import Issue, PullHead, PullRequest, RefStatus, Run
from cicd_orchestrator.redact import redact, register_secret

if TYPE_CHECKING:
    import jenkins

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SCRIPT_PATH = "Jenkinsfile"
_SCRIPT_PATH = re.compile(r"<scriptPath>([^<]*)</scriptPath>")


@dataclass(frozen=True)
class JenkinsJob:
    """The Jenkins job of a repository."""

    name: str  # python-jenkins full name ("acme/shipping")
    path: str  # URL path under the controller ("job/acme/job/shipping/")
    multibranch: bool
    script_path: str


def job_path(full_name: str) -> str:
    """The URL path of a job from its full name (each folder a ``job/<name>/`` segment; a
    multibranch child's name is already URL-encoded, so it is encoded once more)."""
    return "".join(f"job/{quote(part, safe='')}/" for part in full_name.split("/") if part)


class JenkinsProvider(CIProvider):
    """Jenkins (python-jenkins) for CI, ``hosting`` for everything git hosting does."""

    name = "jenkins"

    def __init__(
        self,
        client: jenkins.Jenkins | None = None,
        *,
        hosting: CIProvider,
        connect: Callable[[], jenkins.Jenkins] | None = None,
        url: str | None = None,
        user: str | None = None,
        token: str | None = None,
        jobs: dict[str, str] | None = None,
        script_path: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_log_bytes: int = 256 * 1024 * 1024,
        rebuild_wait: float = 30.0,
        poll_interval: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``client``: a python-jenkins client; or ``url`` (with ``user`` and ``token``) to make
        one; or ``connect``, a function that makes one at first use. ``jobs`` maps a
        repository to its Jenkins job's full name (default: the repository name, i.e. a
        multibranch project in an organization folder); ``script_path`` is the Pipeline script
        every build runs (default: read from the job's ``config.xml``)."""
        if url:
            connect = functools.partial(build_client, url, user, token, timeout, retries)
        self._clients = LazyClient(client, connect, self.name)
        self.hosting = hosting
        self.body_limit = hosting.body_limit
        self.jobs = dict(jobs or {})
        self.script_path = script_path
        self.timeout = timeout
        self.retries = retries
        self.max_log_bytes = max_log_bytes
        self.rebuild_wait = rebuild_wait
        self.poll_interval = poll_interval
        self._sleep = sleep
        self.calls = 0
        self.requests = 0
        self._projects: dict[str, JenkinsJob] = {}
        register_secret(token)
        install_log_filter()

    # ------------------------------------------------------------------ client
    @property
    def client(self) -> jenkins.Jenkins:
        return self._clients.get()

    @property
    def server(self) -> str:
        return str(self.client.server)

    def _request(self, method: str, path: str, params: dict[str, Any] | None = None) -> str:
        import requests

        url = self.server + path.lstrip("/")
        if params:
            url += "?" + urlencode(params)
        self.requests += 1
        return str(self.client.jenkins_open(requests.Request(method, url)))

    def _json(self, path: str, tree: str | None = None, depth: int | None = None) -> Any:
        import json

        params: dict[str, Any] = {}
        if tree:
            params["tree"] = tree
        if depth is not None:
            params["depth"] = depth
        text = self._request("GET", f"{path}api/json", params)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ProviderError(f"Jenkins answered {path}api/json with no JSON") from exc

    @contextlib.contextmanager
    def _errors(self, what: str, *, run: bool = False) -> Iterator[None]:
        """python-jenkins and transport errors as ProviderError (redacted)."""
        import jenkins
        import requests

        try:
            yield
        except jenkins.NotFoundException:
            cls = UnknownRunError if run else UnknownRepositoryError
            raise cls(f"{what}: Jenkins answered 404 Not Found") from None
        except jenkins.JenkinsException as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ProviderError(redact(f"{what}: {detail}")) from None
        except requests.RequestException as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            detail = f"Jenkins answered {status}" if status else type(exc).__name__
            raise ProviderError(redact(f"{what}: {detail}: {exc}")) from None

    # ------------------------------------------------------------------ jobs and builds
    def project(self, repo: str) -> JenkinsJob:
        """The Jenkins job of ``repo`` (cached): multibranch or not, and its script path."""
        if repo in self._projects:
            return self._projects[repo]
        name = self.jobs.get(repo, repo)
        path = job_path(name)
        with self._errors(f"reading the Jenkins job {name} of {repo}"):
            data = self._json(path, tree="name,fullName,url")
        multibranch = str(data.get("_class") or "") in MULTIBRANCH_CLASSES
        script = self.script_path or self._script_path(path)
        info = JenkinsJob(name=name, path=path, multibranch=multibranch, script_path=script)
        self._projects[repo] = info
        return info

    def _script_path(self, path: str) -> str:
        """The Pipeline script path of the job's configuration (``Jenkinsfile`` when the
        configuration cannot be read: it needs Job/ExtendedRead)."""
        try:
            with self._errors("reading the job configuration"):
                text = self._request("GET", f"{path}config.xml")
        except ProviderError as exc:
            log.info("no job configuration (%s); the script path is %s", exc, DEFAULT_SCRIPT_PATH)
            return DEFAULT_SCRIPT_PATH
        match = _SCRIPT_PATH.search(text)
        return html.unescape(match.group(1)).strip() if match else DEFAULT_SCRIPT_PATH

    def _builds(self, repo: str) -> list[BuildRef]:
        """Every build of the repository's job (the newest 100 of each branch job)."""
        project = self.project(repo)
        with self._errors(f"listing the builds of {project.name}"):
            if project.multibranch:
                data = self._json(project.path, tree=f"jobs[name,builds[{BUILD_TREE}]]")
                refs: list[BuildRef] = []
                for child in data.get("jobs") or []:
                    name = str(child.get("name") or "")
                    refs.extend(
                        build_refs(
                            f"{project.name}/{name}", branch_of_job(name), child.get("builds") or []
                        )
                    )
                return refs
            data = self._json(project.path, tree=f"builds[{BUILD_TREE}]")
        return build_refs(project.name, None, data.get("builds") or [])

    def _chains(self, repo: str) -> list[BuildChain]:
        return chains(self._builds(repo))

    def _chain(self, repo: str, run_id: int) -> BuildChain:
        for chain in self._chains(repo):
            if chain.run_id == int(run_id):
                return chain
        raise UnknownRunError(
            f"unknown run {run_id} of {repo} (no Jenkins build with that queue id)"
        )

    def _to_run(self, repo: str, chain: BuildChain, attempt: int | None = None) -> Run:
        project = self.project(repo)
        return to_run(repo, chain, attempt, project.name, project.script_path)

    def build_path(self, build: BuildRef) -> str:
        return f"{job_path(build.job)}{build.number}/"

    # ------------------------------------------------------------------ runs
    def list_runs(
        self, repo: str, branch: str | None = None, head_sha: str | None = None
    ) -> list[Run]:
        self.count_call(repo)
        return [
            self._to_run(repo, c)
            for c in self._chains(repo)
            if (branch is None or c.branch == branch)
            and (head_sha is None or c.head_sha == head_sha)
        ]

    def get_run(self, repo: str, run_id: int, attempt: int | None = None) -> Run:
        self.count_call(repo)
        chain = self._chain(repo, run_id)
        if attempt is not None and attempt == len(chain.builds) + 1 and self._queued(chain):
            run = self._to_run(repo, chain)
            run.run_attempt, run.status, run.conclusion = attempt, RunStatus.QUEUED, None
            return run
        if attempt is not None and not 1 <= attempt <= len(chain.builds):
            raise UnknownRunError(f"run {run_id} of {repo} has no attempt {attempt}")
        run = self._to_run(repo, chain, attempt)
        build = chain.attempt(attempt)
        with self._errors(f"reading the stages of {build.job} #{build.number}", run=True):
            describe = self._stage_view(build)
            nodes = {}
            for stage in (describe or {}).get("stages") or []:
                node = str(stage.get("id") or "")
                if node.isdigit():
                    nodes[node] = self._json_raw(
                        f"{self.build_path(build)}execution/node/{node}/wfapi/describe"
                    )
        run.jobs = stage_jobs(run, build, describe, nodes)
        return run

    def _json_raw(self, path: str) -> Any:
        import json

        import jenkins

        try:
            return json.loads(self._request("GET", path))
        except jenkins.NotFoundException:
            return None
        except ValueError:
            return None

    def _stage_view(self, build: BuildRef) -> dict[str, Any] | None:
        """The build's Pipeline stage view (None for a job without the Pipeline plugins)."""
        data = self._json_raw(f"{self.build_path(build)}wfapi/describe")
        return data if isinstance(data, dict) else None

    def _queued(self, chain: BuildChain) -> bool:
        """Whether Jenkins' queue holds a rebuild of one of the chain's builds."""
        path = job_path(chain.job)
        numbers = {b.number for b in chain.builds}
        with self._errors("reading the Jenkins queue"):
            data = self._json(
                "queue/",
                tree="items[id,task[name,url],actions[causes[shortDescription,originalNumber,"
                "upstreamBuild,upstreamProject]]]",
            )
        for item in data.get("items") or []:
            task_url = str((item.get("task") or {}).get("url") or "")
            if urlsplit(task_url).path.endswith("/" + path) and build_origin(item) in numbers:
                return True
        return False

    # ------------------------------------------------------------------ logs
    def _download_console(self, build: BuildRef) -> Path:
        """The build's console text streamed into a temporary file (capped)."""
        import requests

        url = f"{self.server}{self.build_path(build)}consoleText"
        fd, name = tempfile.mkstemp(prefix="cicd-jenkins-", suffix=".log")
        target = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                self.requests += 1
                resp = self.client.jenkins_open_stream(requests.Request("GET", url))
                written = 0
                try:
                    for chunk in resp.iter_content(64 * 1024):
                        if written + len(chunk) > self.max_log_bytes:
                            out.write(chunk[: self.max_log_bytes - written])
                            out.write(b"\n[the console log was cut at the size limit]\n")
                            break
                        out.write(chunk)
                        written += len(chunk)
                finally:
                    resp.close()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def _find_build(self, repo: str, queue_id: int) -> BuildRef:
        for build in self._builds(repo):
            if build.queue_id == queue_id:
                return build
        raise UnknownRunError(f"unknown job: no build of {repo} with queue id {queue_id}")

    @contextlib.contextmanager
    def open_job_log(self, repo: str, job_id: int) -> Iterator[BinaryIO]:
        """The console log of the job's stage (or of the whole build for node 0)."""
        self.count_call(repo)
        queue_id, node = split_job_id(job_id)
        what = f"log of job {job_id} of {repo}"
        paths: list[Path] = []
        try:
            with self._errors(what, run=True):
                build = self._find_build(repo, queue_id)
                wanted = None
                if node != WHOLE_BUILD_NODE:
                    wanted = stage_occurrence(self._stage_view(build), node)
                    if wanted is None:
                        raise UnknownRunError(f"{what}: build #{build.number} has no stage {node}")
                paths.append(self._download_console(build))
            if wanted is not None:
                paths.append(_cut_stage(paths[0], *wanted))
            with open(paths[-1], "rb") as fh:
                yield fh
        finally:
            for path in paths:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ rebuilds and status
    def rerun_failed_jobs(self, repo: str, run_id: int) -> int:
        """Rebuild the run's latest build (Jenkins reruns the whole Pipeline on the same
        revision); returns the new attempt (the run's next build)."""
        import jenkins

        self.count_call(repo)
        chain = self._chain(repo, run_id)
        last = chain.builds[-1]
        if not last.done:
            raise ProviderError(f"run {run_id} of {repo} is still running (#{last.number})")
        attempt = len(chain.builds) + 1
        what = f"rebuilding {last.job} #{last.number}"
        with self._errors(what, run=True):
            try:
                self._request("POST", f"{self.build_path(last)}replay/rebuild")
            except jenkins.NotFoundException:
                # no Replay (or a lost redirect after it): the Rebuilder plugin, unless the
                # replay did start a build
                if len(self._chain(repo, run_id).builds) < attempt:
                    self._request("POST", f"{self.build_path(last)}rebuild")
        deadline = time.monotonic() + self.rebuild_wait
        while time.monotonic() < deadline:
            if len(self._chain(repo, run_id).builds) >= attempt:
                break
            self._sleep(self.poll_interval)
        log.info("rebuilt %s #%s: attempt %s of run %s", last.job, last.number, attempt, run_id)
        return attempt

    def ref_status(self, repo: str, sha: str) -> RefStatus:
        """The builds of ``sha`` on every branch job: pending while one is queued or running,
        failed when the latest build of a run failed, was unstable or aborted."""
        self.count_call(repo)
        states: list[CombinedState] = []
        runs: list[Run] = []
        for chain in self._chains(repo):
            if sha not in {b.sha for b in chain.builds}:
                continue
            run = self._to_run(repo, chain)
            state = run_state(run)
            if state is CombinedState.SUCCESS and run.conclusion is Conclusion.SKIPPED:
                continue  # NOT_BUILT: no state of the commit
            if state is CombinedState.FAILURE:
                run = self.get_run(repo, run.id)
            states.append(state)
            runs.append(run)
        return RefStatus(sha=sha, state=combine_states(states), runs=runs)

    def trigger_build(self, repo: str, branch: str) -> int:
        """Start a build of ``branch`` (``POST .../build``); returns the queue item id."""
        self.count_call(repo)
        project = self.project(repo)
        name = f"{project.name}/{quote(branch, safe='')}" if project.multibranch else project.name
        with self._errors(f"starting a build of {name}"):
            return int(self.client.build_job(name))

    # ------------------------------------------------------------------ git hosting
    def default_branch(self, repo: str) -> str:
        return self.hosting.default_branch(repo)

    def pull_request_head(self, repo: str, number: int) -> PullHead | None:
        return self.hosting.pull_request_head(repo, number)

    def branch_head(self, repo: str, branch: str) -> str | None:
        return self.hosting.branch_head(repo, branch)

    def protected_branches(self, repo: str) -> list[str]:
        return self.hosting.protected_branches(repo)

    def git_remote(self, repo: str) -> GitRemote:
        return self.hosting.git_remote(repo)

    def identity(self) -> str:
        return self.hosting.identity()

    def commit_author(self, repo: str, sha: str) -> str:
        return self.hosting.commit_author(repo, sha)

    def push_branch(self, repo: str, workdir: str, branch: str) -> str:
        return self.hosting.push_branch(repo, workdir, branch)

    def open_or_update_pull_request(
        self,
        repo: str,
        head: str,
        base: str,
        title: str,
        body: str,
        marker: str,
        draft: bool = False,
    ) -> PullRequest:
        return self.hosting.open_or_update_pull_request(
            repo, head, base, title, body, marker, draft
        )

    def set_commit_status(
        self,
        repo: str,
        sha: str,
        state: CombinedState,
        description: str,
        target_url: str = "",
        context: str = STATUS_CONTEXT,
    ) -> None:
        self.hosting.set_commit_status(repo, sha, state, description, target_url, context)

    def set_owners(
        self,
        repo: str,
        number: int,
        assignees: list[str],
        reviewers: list[str] | None = None,
        team_reviewers: list[str] | None = None,
    ) -> None:
        self.hosting.set_owners(repo, number, assignees, reviewers, team_reviewers)

    def close_pull_request(self, repo: str, number: int, comment_body: str, marker: str) -> None:
        self.hosting.close_pull_request(repo, number, comment_body, marker)

    def mark_ready_for_review(self, repo: str, number: int) -> PullRequest:
        return self.hosting.mark_ready_for_review(repo, number)

    def workflows_for(
        self,
        repo: str,
        sha: str,
        event: str = "push",
        branch: str | None = None,
        base_branch: str | None = None,
    ) -> list[str] | None:
        return None  # Jenkins builds the branch, not the hosting's workflows: wait for a build

    def comment(self, repo: str, number: int, body: str, marker: str) -> None:
        self.hosting.comment(repo, number, body, marker)

    def open_issue(
        self, repo: str, title: str, body: str, marker: str, labels: list[str] | None = None
    ) -> Issue:
        return self.hosting.open_issue(repo, title, body, marker, labels)


def _cut_stage(console: Path, name: str, occurrence: int) -> Path:
    """A temporary file with the lines of one stage of a console log file."""
    fd, tmp = tempfile.mkstemp(prefix="cicd-jenkins-stage-", suffix=".log")
    target = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out, open(console, "rb") as src:
            for line in stage_lines(src, name, occurrence):
                out.write(line)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target

"""A Jenkins-compatible HTTP server on loopback, backed by a local provider.

``JenkinsServer(local, users={"admin": token}).start()`` answers, under ``url``, the parts of
Jenkins' remote access API that python-jenkins and the Jenkins provider use, with the
documented payload shapes (see ``payloads``) and the ``tree`` query parameter:

- ``/api/json`` (the controller), ``/me/api/json``, ``/crumbIssuer/api/json``,
  ``/queue/api/json``, ``/queue/item/<id>/api/json``;
- ``/job/<owner>/`` (an organization folder), ``/job/<owner>/job/<name>/`` (the multibranch
  project of the repository ``owner/name``: ``api/json``, ``config.xml`` with its script
  path), ``/job/<owner>/job/<name>/job/<branch>/`` (a branch job; the branch URL-encoded in
  the job name, so ``fix/x`` is ``job/fix%252Fx``), and standalone Pipeline jobs
  (``standalone={"job-name": ("owner/name", "branch")}``) at ``/job/<job-name>/``;
- per build ``<n>/api/json`` (result, building, queueId, the ``CauseAction`` and the git
  ``BuildData`` with ``lastBuiltRevision.SHA1``), ``<n>/consoleText`` (the Pipeline console),
  ``<n>/wfapi/describe`` and ``<n>/execution/node/<id>/wfapi/describe`` (the stage view),
  and the permalinks ``lastBuild``, ``lastCompletedBuild``, ``lastFailedBuild``,
  ``lastSuccessfulBuild``;
- ``POST <job>/build`` (a new build of the branch: a new local run; ``201`` with the queue
  item in ``Location``), ``POST <n>/replay/rebuild`` and ``POST <n>/rebuild`` (a new attempt
  of the build's local run, i.e. a new build whose cause names build ``n``).

What it models of Jenkins' security: HTTP Basic authentication with a user and an API token
(anonymous: ``403 Authentication required``; a wrong token: ``401 Invalid password/token``),
and CSRF protection (every POST needs the ``Jenkins-Crumb`` header the crumb issuer gave that
user). ``inject`` makes the next requests matching a path fail with an HTTP status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import RunStatus
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.testing.jenkins_server import payloads as p
from cicd_orchestrator.testing.jenkins_server.console import Rendered, millis, render
from cicd_orchestrator.testing.jenkins_server.model import (
    BuildIndex,
    BuildRecord,
    rebuild_cause,
    replay_cause,
    user_cause,
)
from cicd_orchestrator.testing.loopback import LoopbackServer

log = logging.getLogger(__name__)

JENKINS_VERSION = "2.479.3"
CRUMB_FIELD = "Jenkins-Crumb"
_PERMALINKS = ("lastBuild", "lastCompletedBuild", "lastFailedBuild", "lastSuccessfulBuild")


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    status: int
    user: str | None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    path: re.Pattern[str]
    status: int
    count: int
    method: str | None = None
    fired: int = 0


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """What a ``/job/...`` path names."""

    kind: str  # folder | project | branch | pipeline
    path: str  # the job's URL path, with slashes
    repo: str = ""
    owner: str = ""
    branch: str = ""
    name: str = ""  # python-jenkins full name


class _Handler(BaseHTTPRequestHandler):
    server_version = "Jetty(12.0.16)"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    owner: JenkinsServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("jenkins-server: " + format, *args)

    def _serve(self) -> None:
        self.owner.handle(self)

    do_GET = do_POST = do_HEAD = _serve


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(data).encode("utf-8")
    return Answer(
        status, body, {"Content-Type": "application/json;charset=utf-8", **(headers or {})}
    )


def _text(status: int, text: str, ctype: str = "text/plain;charset=utf-8") -> Answer:
    return Answer(status, text.encode("utf-8"), {"Content-Type": ctype})


def _error_page(status: int, message: str) -> Answer:
    page = (
        f"<html><head><title>Error {status} {message}</title></head>"
        f"<body><h2>HTTP ERROR {status} {message}</h2></body></html>"
    )
    return _text(status, page, "text/html;charset=utf-8")


NOT_FOUND = _error_page(404, "Not Found")


class JenkinsServer(LoopbackServer[None]):
    """See the module docstring. ``users``: user -> API token (the only credentials)."""

    NAME = "Jenkins"
    HANDLER = _Handler

    def __init__(
        self,
        local_provider: LocalProvider,
        users: dict[str, str],
        *,
        port: int = 0,
        standalone: dict[str, tuple[str, str]] | None = None,
        git_url: str | None = None,
    ) -> None:
        super().__init__(port)
        self.local = local_provider
        self.users = dict(users)
        self.standalone = dict(standalone or {})
        self.git_url = git_url
        self.index = BuildIndex(local_provider)
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self._secret = secrets.token_bytes(32)
        self._session = secrets.token_hex(4)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{super().url}/"

    # ------------------------------------------------------------------ test controls
    def inject(
        self, path: str, status: int = 500, count: int = 1, method: str | None = None
    ) -> Fault:
        """The next ``count`` requests whose path matches the regex ``path`` get ``status``."""
        fault = Fault(re.compile(path), status, count, method.upper() if method else None)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def crumb_for(self, user: str) -> str:
        return hmac.new(self._secret, f"crumb:{user}".encode(), hashlib.sha256).hexdigest()

    def job_url(self, repo: str, branch: str | None = None) -> str:
        owner, name = repo.split("/", 1)
        path = f"job/{quote(owner, safe='')}/job/{quote(name, safe='')}/"
        if branch is not None:
            path += f"job/{quote(quote(branch, safe=''), safe='')}/"
        return self.url + path

    def build_of(self, repo: str, run_id: int, attempt: int = 1) -> BuildRecord | None:
        """The build of a local run's attempt (for tests)."""
        return self.index.record_of(repo, run_id, attempt)

    # ------------------------------------------------------------------ requests
    def handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, dict(parse_qsl(split.query))
        length = int(h.headers.get("Content-Length") or 0)
        if length:
            h.rfile.read(length)
        user = self._user(h)
        try:
            answer = self._answer(h, h.command, path, query, user)
        except Exception as exc:  # a bug of the server must not hang the client
            log.exception("jenkins-server: %s %s failed", h.command, path)
            answer = _error_page(500, f"Server Error: {type(exc).__name__}")
        headers = {k: v for k, v in h.headers.items() if k.lower() != "authorization"}
        with self._lock:
            self.requests.append(
                RequestRecord(
                    h.command,
                    path,
                    split.query,
                    answer.status,
                    user if isinstance(user, str) else None,
                    headers,
                )
            )
        self._send(h, answer)

    def _answer(
        self, h: _Handler, method: str, path: str, query: dict[str, str], user: str | bool | None
    ) -> Answer:
        fault = self._take_fault(method, path)
        if fault is not None:
            return _error_page(fault.status, "Injected fault")
        if user is False:
            return Answer(
                401,
                b"<html><body>Invalid password/token for user</body></html>",
                {
                    "Content-Type": "text/html;charset=utf-8",
                    "WWW-Authenticate": 'Basic realm="Jenkins"',
                },
            )
        if user is None:
            return Answer(
                403,
                b"<html><body>Authentication required</body></html>",
                {
                    "Content-Type": "text/html;charset=utf-8",
                    "X-You-Are-Authenticated-As": "anonymous",
                    "X-Required-Permission": "hudson.model.Hudson.Read",
                },
            )
        assert isinstance(user, str)
        if method == "POST" and not hmac.compare_digest(
            h.headers.get(CRUMB_FIELD, ""), self.crumb_for(user)
        ):
            return _error_page(403, "No valid crumb was included in the request")
        answer = self._route(method, path.rstrip("/") + "/", query, user)
        tree = query.get("tree")
        if (
            tree
            and answer.status == 200
            and answer.headers.get("Content-Type", "").startswith("application/json")
        ):
            data = p.apply_tree(json.loads(answer.body), p.parse_tree(tree))
            answer = _json(
                200, data, {k: v for k, v in answer.headers.items() if k != "Content-Type"}
            )
        return answer

    def _user(self, h: _Handler) -> str | bool | None:
        """The authenticated user, False for wrong credentials, None for anonymous."""
        scheme, _, value = h.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, token = base64.b64decode(value).decode("utf-8").partition(":")
        except ValueError:
            return False
        expected = self.users.get(user)
        if expected is None or not hmac.compare_digest(token, expected):
            return False
        return user

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.count > 0 and fault.path.search(path):
                    if fault.method and fault.method != method:
                        continue
                    fault.count -= 1
                    fault.fired += 1
                    return fault
        return None

    def _send(self, h: _Handler, answer: Answer) -> None:
        try:
            h.send_response(answer.status)
            headers = {
                "X-Jenkins": JENKINS_VERSION,
                "X-Jenkins-Session": self._session,
                "X-Content-Type-Options": "nosniff",
                **answer.headers,
                "Content-Length": str(len(answer.body)),
            }
            for key, value in headers.items():
                h.send_header(key, value)
            h.end_headers()
            if answer.body and h.command != "HEAD":
                h.wfile.write(answer.body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, path: str, query: dict[str, str], user: str) -> Answer:
        segments = [s for s in path.split("/") if s]
        if not segments:
            return _text(
                200, "<html><head><title>Dashboard [Jenkins]</title></head></html>", "text/html"
            )
        if segments == ["api", "json"]:
            return _json(200, self._root(deep=bool(query.get("tree"))))
        if segments == ["crumbIssuer", "api", "json"]:
            data = p.fixture("crumb", self.url)
            data["crumb"] = self.crumb_for(user)
            return _json(200, data)
        if segments in (["me", "api", "json"], ["whoAmI", "api", "json"]):
            data = p.fixture("user", self.url)
            data.update(id=user, fullName=user, absoluteUrl=f"{self.url}user/{user}")
            return _json(200, data)
        if segments == ["queue", "api", "json"]:
            return _json(
                200, {"_class": "hudson.model.Queue", "discoverableItems": [], "items": []}
            )
        if (
            len(segments) == 5
            and segments[:2] == ["queue", "item"]
            and segments[3:] == ["api", "json"]
        ):
            return self._queue_item(segments[2])
        names: list[str] = []
        while len(segments) >= 2 and segments[0] == "job":
            names.append(unquote(segments[1]))
            segments = segments[2:]
        target = self._target(names) if names else None
        if target is None:
            return NOT_FOUND
        return self._job_route(method, target, segments, user, bool(query.get("tree")))

    def _target(self, names: list[str]) -> Target | None:
        repos = set(self.index.repositories())
        if len(names) == 1 and names[0] in self.standalone:
            repo, branch = self.standalone[names[0]]
            path = f"/job/{quote(names[0], safe='')}/"
            return Target("pipeline", path, repo, repo.split("/")[0], branch, names[0])
        if len(names) == 1 and any(r.split("/")[0] == names[0] for r in repos):
            return Target(
                "folder", f"/job/{quote(names[0], safe='')}/", owner=names[0], name=names[0]
            )
        if len(names) >= 2 and f"{names[0]}/{names[1]}" in repos:
            repo = f"{names[0]}/{names[1]}"
            path = f"/job/{quote(names[0], safe='')}/job/{quote(names[1], safe='')}/"
            if len(names) == 2:
                return Target("project", path, repo, names[0], name=repo)
            if len(names) == 3:
                branch = unquote(names[2])
                if branch in self.index.branches(repo):
                    path += f"job/{quote(names[2], safe='')}/"
                    return Target("branch", path, repo, names[0], branch, f"{repo}/{names[2]}")
        return None

    def _job_route(
        self, method: str, target: Target, rest: list[str], user: str, deep: bool
    ) -> Answer:
        if not rest and method in ("GET", "HEAD"):  # the job's page (where POSTs redirect to)
            title = f"{target.name} [Jenkins]"
            return _text(200, f"<html><head><title>{title}</title></head></html>", "text/html")
        if rest == ["api", "json"] and method in ("GET", "HEAD"):
            return _json(200, self._job_payload(target, deep))
        if rest == ["config.xml"] and method == "GET" and target.kind in ("project", "pipeline"):
            return self._config(target)
        if target.kind not in ("branch", "pipeline"):
            return NOT_FOUND
        if rest == ["build"] and method == "POST":
            return self._trigger(target, user)
        if not rest:
            return NOT_FOUND
        record = self._resolve_build(target, rest[0])
        if record is None:
            return NOT_FOUND
        return self._build_route(method, target, record, rest[1:], user)

    def _build_route(
        self, method: str, target: Target, record: BuildRecord, rest: list[str], user: str
    ) -> Answer:
        if method == "POST":
            if rest == ["replay", "rebuild"]:
                return self._rebuild(target, record, replay=True)
            if rest == ["rebuild"]:
                return self._rebuild(target, record, replay=False)
            return NOT_FOUND
        build_path = f"{target.path}{record.number}/"
        if rest == ["api", "json"]:
            return _json(200, self._build_payload(target, record))
        if rest == ["consoleText"]:
            return _text(200, self._render(target, record).text)
        if rest == ["wfapi", "describe"]:
            run = self.index.attempt_run(record)
            rendered = self._render(target, record, run)
            start = self._timestamp(record, run)
            end = start + self._duration(run)
            building = run.status is not RunStatus.COMPLETED
            return _json(
                200, p.describe_payload(build_path, record.number, rendered, start, end, building)
            )
        if (
            len(rest) == 5
            and rest[0] == "execution"
            and rest[1] == "node"
            and rest[3:]
            == [
                "wfapi",
                "describe",
            ]
        ):
            node = int(rest[2]) if rest[2].isdigit() else -1
            data = p.node_payload(build_path, self._render(target, record), node)
            return _json(200, data) if data is not None else NOT_FOUND
        return NOT_FOUND

    # ------------------------------------------------------------------ payloads
    def _root(self, deep: bool) -> dict[str, Any]:
        """The controller; with a ``tree`` query the folders' jobs are nested (as Jenkins
        expands them for ``jobs[name,jobs[...]]``)."""
        data = p.fixture("hudson", self.url)
        owners = sorted({r.split("/")[0] for r in self.index.repositories()})
        data["jobs"] = [
            {
                "_class": p.ORG_FOLDER,
                "name": o,
                "url": f"{self.url}job/{quote(o, safe='')}/",
                "color": "blue",
                **({"jobs": self._projects_of(o, deep)} if deep else {}),
            }
            for o in owners
        ] + [
            {
                "_class": p.WORKFLOW_JOB,
                "name": n,
                "url": f"{self.url}job/{quote(n, safe='')}/",
                "color": "blue",
            }
            for n in sorted(self.standalone)
        ]
        return data

    def _projects_of(self, owner: str, deep: bool) -> list[dict[str, Any]]:
        repos = sorted(r for r in self.index.repositories() if r.split("/")[0] == owner)
        out = []
        for repo in repos:
            entry: dict[str, Any] = {
                "_class": p.MULTIBRANCH,
                "name": repo.split("/", 1)[1],
                "url": self.job_url(repo),
                "color": "blue",
            }
            if deep:
                entry["jobs"] = [
                    {
                        "_class": p.WORKFLOW_JOB,
                        "name": quote(b, safe=""),
                        "url": self.job_url(repo, b),
                        "color": "blue",
                    }
                    for b in self.index.branches(repo)
                ]
            out.append(entry)
        return out

    def _abs(self, path: str) -> str:
        return self.url + path.lstrip("/")

    def _job_payload(self, target: Target, deep: bool) -> dict[str, Any]:
        if target.kind == "folder":
            data = p.fixture("organization_folder", self.url)
            data["jobs"] = self._projects_of(target.owner, deep)
            data.update(
                name=target.owner,
                fullName=target.owner,
                displayName=target.owner,
                fullDisplayName=target.owner,
                url=self._abs(target.path),
            )
            return data
        if target.kind == "project":
            data = p.fixture("multibranch_project", self.url)
            name = target.repo.split("/", 1)[1]
            data["jobs"] = [
                self._branch_job(
                    Target(
                        "branch",
                        f"{target.path}job/{quote(quote(b, safe=''), safe='')}/",
                        target.repo,
                        target.owner,
                        b,
                        f"{target.repo}/{quote(b, safe='')}",
                    ),
                    nested=True,
                )
                for b in self.index.branches(target.repo)
            ]
            data.update(
                name=name,
                fullName=target.repo,
                displayName=name,
                fullDisplayName=f"{target.owner} » {name}",
                url=self._abs(target.path),
            )
            data["primaryView"]["url"] = data["views"][0]["url"] = self._abs(target.path)
            return data
        return self._branch_job(target, nested=False)

    def _branch_job(self, target: Target, nested: bool) -> dict[str, Any]:
        builds = self.index.builds(target.repo, target.branch)
        runs = {b.queue_id: self.index.attempt_run(b) for b in builds}
        full = [self._build_payload(target, b, runs[b.queue_id]) for b in builds]
        url = self._abs(target.path)
        short = target.name.rsplit("/", 1)[-1]
        if nested:  # depth 0 inside the project: the job's summary (builds for a tree query)
            last = full[0] if full else None
            return {
                "_class": p.WORKFLOW_JOB,
                "name": short,
                "url": url,
                "color": p.color_of(
                    last["result"] if last else None, bool(last and last["building"])
                ),
                "displayName": target.branch,
                "builds": full,
            }
        data = p.fixture("workflow_job", self.url)

        def ref(b: dict[str, Any] | None) -> dict[str, Any] | None:
            return p.build_ref(b["url"], b["number"]) if b else None

        def first(pred: Any) -> dict[str, Any] | None:
            return next((b for b in full if pred(b)), None)

        last = full[0] if full else None
        data.update(
            name=short,
            displayName=target.branch,
            fullName=target.name,
            fullDisplayName=" » ".join([*target.repo.split("/"), target.branch])
            if target.kind == "branch"
            else target.name,
            url=url,
            builds=full,
            color=p.color_of(last["result"] if last else None, bool(last and last["building"])),
            firstBuild=ref(full[-1] if full else None),
            lastBuild=ref(last),
            lastCompletedBuild=ref(first(lambda b: not b["building"])),
            lastFailedBuild=ref(first(lambda b: b["result"] == "FAILURE")),
            lastStableBuild=ref(first(lambda b: b["result"] == "SUCCESS")),
            lastSuccessfulBuild=ref(first(lambda b: b["result"] in ("SUCCESS", "UNSTABLE"))),
            lastUnstableBuild=ref(first(lambda b: b["result"] == "UNSTABLE")),
            lastUnsuccessfulBuild=ref(first(lambda b: b["result"] not in (None, "SUCCESS"))),
            nextBuildNumber=(last["number"] + 1) if last else 1,
            inQueue=False,
        )
        if target.kind == "pipeline":
            data["property"] = []
        return data

    def _remote(self, repo: str) -> str:
        return f"{self.git_url.rstrip('/')}/{repo}.git" if self.git_url else f"local://{repo}"

    @staticmethod
    def _timestamp(record: BuildRecord, run: Any) -> int:
        jobs = [millis(j.started_at) for j in run.jobs if j.started_at]
        return min(jobs) if jobs else millis(run.updated_at or run.created_at)

    @staticmethod
    def _duration(run: Any) -> int:
        if run.status is not RunStatus.COMPLETED:
            return 0
        starts = [millis(j.started_at) for j in run.jobs if j.started_at]
        ends = [millis(j.completed_at) for j in run.jobs if j.completed_at]
        return max(1, max(ends) - min(starts)) if starts and ends else 1

    def _build_payload(
        self, target: Target, record: BuildRecord, run: Any = None
    ) -> dict[str, Any]:
        run = run or self.index.attempt_run(record)
        building = run.status is not RunStatus.COMPLETED
        result = None if building else p.result_of(run.conclusion)
        builds = {b.number for b in self.index.builds(target.repo, target.branch)}
        url = self._abs(f"{target.path}{record.number}/")
        previous = record.number - 1 if record.number - 1 in builds else None
        following = record.number + 1 if record.number + 1 in builds else None
        return p.build_payload(
            self.url,
            url=url,
            full_display=" » ".join([*target.repo.split("/"), target.branch]),
            number=record.number,
            queue_id=record.queue_id,
            cause=record.cause,
            sha=run.head_sha,
            branch=target.branch,
            remote=self._remote(target.repo),
            building=building,
            result=result,
            timestamp=self._timestamp(record, run),
            duration=self._duration(run),
            previous=p.build_ref(self._abs(f"{target.path}{previous}/"), previous)
            if previous
            else None,
            following=p.build_ref(self._abs(f"{target.path}{following}/"), following)
            if following
            else None,
        )

    def _render(self, target: Target, record: BuildRecord, run: Any = None) -> Rendered:
        run = run or self.index.attempt_run(record)
        workspace = "/var/jenkins_home/workspace/" + re.sub(r"[^\w.-]", "_", target.name)[-60:]
        return render(
            run,
            lambda job: self.index.job_log(target.repo, job.id),
            cause=str(record.cause.get("shortDescription") or "Started"),
            script_path=self.index.script_path(target.repo),
            remote=self._remote(target.repo),
            workspace=workspace,
        )

    def _config(self, target: Target) -> Answer:
        script = self.index.script_path(target.repo)
        remote = self._remote(target.repo)
        if target.kind == "project":
            text = p.config_xml(
                "multibranch",
                source_id=hashlib.sha1(target.repo.encode()).hexdigest()[:12],
                remote=remote,
                script_path=script,
            )
        else:
            text = p.config_xml("pipeline", remote=remote, branch=target.branch, script_path=script)
        return _text(200, text, "application/xml;charset=utf-8")

    def _queue_item(self, ident: str) -> Answer:
        record = self.index.by_queue_id(int(ident)) if ident.isdigit() else None
        if record is None:
            return NOT_FOUND
        data = p.fixture("queue_item", self.url)
        target = self._target([*record.repo.split("/"), quote(record.branch, safe="")])
        if target is None:
            return NOT_FOUND
        data["actions"][0]["causes"] = [record.cause]
        data.update(id=record.queue_id, url=f"queue/item/{record.queue_id}/")
        data["task"].update(name=target.name.rsplit("/", 1)[-1], url=self._abs(target.path))
        data["executable"].update(
            number=record.number, url=self._abs(f"{target.path}{record.number}/")
        )
        return _json(200, data)

    # ------------------------------------------------------------------ builds
    def _resolve_build(self, target: Target, ident: str) -> BuildRecord | None:
        if ident.isdigit():
            return self.index.build(target.repo, target.branch, int(ident))
        if ident not in _PERMALINKS:
            return None
        for record in self.index.builds(target.repo, target.branch):
            run = self.index.attempt_run(record)
            done = run.status is RunStatus.COMPLETED
            result = p.result_of(run.conclusion) if done else None
            if (
                ident == "lastBuild"
                or (ident == "lastCompletedBuild" and done)
                or (ident == "lastFailedBuild" and result == "FAILURE")
                or (ident == "lastSuccessfulBuild" and result in ("SUCCESS", "UNSTABLE"))
            ):
                return record
        return None

    def _trigger(self, target: Target, user: str) -> Answer:
        sha = self.index.branch_sha(target.repo, target.branch)
        if sha is None:
            return NOT_FOUND
        script = self.index.script_path(target.repo)
        with self.index.lock:
            run_ids = self.local.start_runs(target.repo, sha, target.branch, "push")
            runs = [self.local._get_run(target.repo, r) for r in run_ids]
            mine = [r for r in runs if r.workflow_path == script]
            if not mine:
                return _error_page(500, "the branch has no Pipeline script")
            self.index.pending_causes[(target.repo, mine[0].id, 1)] = user_cause(user)
            record = self.index.record_of(target.repo, mine[0].id, 1)
        assert record is not None
        location = f"{self.url}queue/item/{record.queue_id}/"
        return Answer(201, b"", {"Location": location})

    def _rebuild(self, target: Target, record: BuildRecord, replay: bool) -> Answer:
        with self.index.lock:
            try:
                attempt = self.local.rerun_all_jobs(target.repo, record.run_id)
            except CicdError as exc:
                return _error_page(409, f"Cannot rebuild: {exc}")
            cause = (
                replay_cause(record.number)
                if replay
                else rebuild_cause(record.number, target.name, target.path.lstrip("/"))
            )
            self.index.pending_causes[(target.repo, record.run_id, attempt)] = cause
            self.index.sync(target.repo)
        return Answer(302, b"", {"Location": self._abs(target.path)})

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
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, unquote, urlsplit

from cicd_devkit.loopback import (
    Answer,
    Fault,
    LoopbackHandler,
    LoopbackServer,
    RequestRecord,
    read_body,
    send_answer,
)
from cicd_devkit.servers.jenkins import payloads as p
from cicd_devkit.servers.jenkins.model import (
    BuildIndex,
    BuildRecord,
    rebuild_cause,
    replay_cause,
    user_cause,
)
from cicd_devkit.servers.jenkins.views import (
    NOT_FOUND,
    JobViews,
    Target,
    error_page,
    json_answer,
    text_answer,
)
from cicd_orchestrator.ci.local.provider import LocalProvider
from cicd_orchestrator.constants import RunStatus
from cicd_orchestrator.exceptions import CicdError

log = logging.getLogger(__name__)

JENKINS_VERSION = "2.479.3"
CRUMB_FIELD = "Jenkins-Crumb"
_PERMALINKS = ("lastBuild", "lastCompletedBuild", "lastFailedBuild", "lastSuccessfulBuild")
_WRONG_TOKEN = Answer(
    401,
    b"<html><body>Invalid password/token for user</body></html>",
    {"Content-Type": "text/html;charset=utf-8", "WWW-Authenticate": 'Basic realm="Jenkins"'},
)
_ANONYMOUS = Answer(
    403,
    b"<html><body>Authentication required</body></html>",
    {
        "Content-Type": "text/html;charset=utf-8",
        "X-You-Are-Authenticated-As": "anonymous",
        "X-Required-Permission": "hudson.model.Hudson.Read",
    },
)

__all__ = ["Fault", "JenkinsServer", "RequestRecord"]


class _Handler(LoopbackHandler):
    server_version = "Jetty(12.0.16)"
    do_GET = do_POST = do_HEAD = LoopbackHandler.serve


class JenkinsServer(JobViews, LoopbackServer[None]):
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
        self._secret = secrets.token_bytes(32)
        self._session = secrets.token_hex(4)

    @property
    def url(self) -> str:
        return f"{super().url}/"

    # ------------------------------------------------------------------ test controls
    def inject(
        self, path: str, status: int = 500, count: int = 1, method: str | None = None
    ) -> Fault:
        """The next ``count`` requests whose path matches the regex ``path`` get ``status``."""
        fault = Fault("error", count, re.compile(path), method.upper() if method else None, status)
        return self.add_fault(fault)

    def crumb_for(self, user: str) -> str:
        return hmac.new(self._secret, f"crumb:{user}".encode(), hashlib.sha256).hexdigest()

    def build_of(self, repo: str, run_id: int, attempt: int = 1) -> BuildRecord | None:
        """The build of a local run's attempt (for tests)."""
        return self.index.record_of(repo, run_id, attempt)

    # ------------------------------------------------------------------ requests
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        path, query = split.path, dict(parse_qsl(split.query))
        read_body(h)
        user = self._user(h)
        try:
            answer = self._answer(h, h.command, path, query, user)
        except Exception as exc:  # a bug of the server must not hang the client
            log.exception("jenkins-server: %s %s failed", h.command, path)
            answer = error_page(500, f"Server Error: {type(exc).__name__}")
        headers = {k: v for k, v in h.headers.items() if k.lower() != "authorization"}
        named = user if isinstance(user, str) else None
        record = RequestRecord(h.command, path, answer.status, split.query, user=named)
        record.headers = headers
        self.record(record)
        jenkins = {
            "X-Jenkins": JENKINS_VERSION,
            "X-Jenkins-Session": self._session,
            "X-Content-Type-Options": "nosniff",
        }
        send_answer(h, Answer(answer.status, answer.body, {**jenkins, **answer.headers}))

    def _answer(
        self,
        h: BaseHTTPRequestHandler,
        method: str,
        path: str,
        query: dict[str, str],
        user: str | bool | None,
    ) -> Answer:
        fault = self.take_fault(method, path)
        if fault is not None:
            return error_page(fault.status, "Injected fault")
        if user is False:
            return _WRONG_TOKEN
        if user is None:
            return _ANONYMOUS
        assert isinstance(user, str)
        if method == "POST" and not hmac.compare_digest(
            h.headers.get(CRUMB_FIELD, ""), self.crumb_for(user)
        ):
            return error_page(403, "No valid crumb was included in the request")
        answer = self._route(method, path.rstrip("/") + "/", query, user)
        return _with_tree(answer, query.get("tree"))

    def _user(self, h: BaseHTTPRequestHandler) -> str | bool | None:
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

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, path: str, query: dict[str, str], user: str) -> Answer:
        segments = [s for s in path.split("/") if s]
        if not segments:
            return text_answer(
                200, "<html><head><title>Dashboard [Jenkins]</title></head></html>", "text/html"
            )
        if segments == ["api", "json"]:
            return json_answer(200, self._root(deep=bool(query.get("tree"))))
        if segments == ["crumbIssuer", "api", "json"]:
            data = p.fixture("crumb", self.url)
            data["crumb"] = self.crumb_for(user)
            return json_answer(200, data)
        if segments in (["me", "api", "json"], ["whoAmI", "api", "json"]):
            data = p.fixture("user", self.url)
            data.update(id=user, fullName=user, absoluteUrl=f"{self.url}user/{user}")
            return json_answer(200, data)
        if segments == ["queue", "api", "json"]:
            return json_answer(
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

    def _job_route(
        self, method: str, target: Target, rest: list[str], user: str, deep: bool
    ) -> Answer:
        if not rest and method in ("GET", "HEAD"):  # the job's page (where POSTs redirect to)
            title = f"{target.name} [Jenkins]"
            return text_answer(
                200, f"<html><head><title>{title}</title></head></html>", "text/html"
            )
        if rest == ["api", "json"] and method in ("GET", "HEAD"):
            return json_answer(200, self._job_payload(target, deep))
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
            return json_answer(200, self._build_payload(target, record))
        if rest == ["consoleText"]:
            return text_answer(200, self._render(target, record).text)
        if rest == ["wfapi", "describe"]:
            run = self.index.attempt_run(record)
            rendered = self._render(target, record, run)
            start = self._timestamp(record, run)
            end = start + self._duration(run)
            building = run.status is not RunStatus.COMPLETED
            return json_answer(
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
            return json_answer(200, data) if data is not None else NOT_FOUND
        return NOT_FOUND

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
                return error_page(500, "the branch has no Pipeline script")
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
                return error_page(409, f"Cannot rebuild: {exc}")
            cause = (
                replay_cause(record.number)
                if replay
                else rebuild_cause(record.number, target.name, target.path.lstrip("/"))
            )
            self.index.pending_causes[(target.repo, record.run_id, attempt)] = cause
            self.index.sync(target.repo)
        return Answer(302, b"", {"Location": self._abs(target.path)})


def _with_tree(answer: Answer, tree: str | None) -> Answer:
    """A JSON answer cut down to the fields of a ``tree`` query."""
    json_type = answer.headers.get("Content-Type", "").startswith("application/json")
    if not tree or answer.status != 200 or not json_type:
        return answer
    data = p.apply_tree(json.loads(answer.body), p.parse_tree(tree))
    return json_answer(200, data, {k: v for k, v in answer.headers.items() if k != "Content-Type"})

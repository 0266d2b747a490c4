"""The orchestrator's FastAPI app inside Airflow's API server (mounted at ``/cicd``):

- ``POST /cicd/webhook/github`` and ``/cicd/webhook/gitlab``: signed (GitHub) or
  token-carrying (GitLab) deliveries of failed runs become sessions; bodies are capped;
- ``GET /cicd/health``: for load balancers;
- ``GET /cicd/sessions`` and ``/cicd/sessions/{id}``: the sessions pages, for logged-in users
  only (Airflow's own authentication: the UI's JWT cookie or a bearer token).
"""

from __future__ import annotations

import datetime
import hashlib
import html
import json
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.airflow.names import CONFIG_VARIABLE, SESSION_PREFIX, attempt_run_id
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import PRIORITY_WEIGHT, SessionStatus
from cicd_orchestrator.exceptions import CicdError, ConfError
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.serde import from_json_obj
from cicd_orchestrator.session import join_run_id, primary_category, session_id_for
from cicd_orchestrator.strategies import MONITOR_DAG_ID, dag_id_for, load_strategies
from cicd_orchestrator.webhooks import gitlab as gl
from cicd_orchestrator.webhooks.github import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SECRET_VARIABLE,
    SIGNATURE_HEADER,
    DeliveryCache,
    WebhookRequest,
    parse_event,
    verify_signature,
)

log = logging.getLogger(__name__)
deliveries = DeliveryCache()


def _get_user() -> Any:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def _variable(key: str) -> str | None:
    from airflow.models.variable import Variable

    value = Variable.get(key, default_var=None)
    return None if value is None else str(value)


def session_dag_ids() -> list[str]:
    """The DAGs whose runs make up the sessions: the attempts and the monitor."""
    return [*(spec.dag_id for spec in load_strategies().values()), MONITOR_DAG_ID]


def may_read_sessions(user: Any) -> bool:
    """Whether the auth manager lets ``user`` read the runs of every session DAG (the
    sessions' pages show what those runs did)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )

    manager = get_auth_manager()
    return all(
        manager.is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id),
            user=user,
        )
        for dag_id in session_dag_ids()
    )


def _forbidden() -> HTMLResponse:
    body = "<p>Reading the sessions needs read access to the runs of the cicd DAGs.</p>"
    return HTMLResponse(_page("Forbidden", body), 403)


def _session_states() -> list[SessionState]:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    states = []
    with create_session() as db:
        rows = db.scalars(select(Variable).where(Variable.key.startswith(SESSION_PREFIX)))
        for row in rows:
            try:
                states.append(from_json_obj(SessionState, json.loads(row.val)))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("session Variable %s does not parse: %s", row.key, exc)
    return states


def first_attempt_dag_id() -> str:
    """The DAG of the strategy the deployment's ``retry_strategy.attempt_1`` names."""
    raw = _variable(CONFIG_VARIABLE)
    return dag_id_for(load_config(json.loads(raw) if raw else None).strategy_for_attempt(1))


def _trigger(run_id: str, conf: dict[str, Any]) -> str:
    """Trigger attempt 1 (the DAG of ``retry_strategy.attempt_1``); "created" or
    "duplicate" (the run id is one per push)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        trigger_dag(
            first_attempt_dag_id(),
            run_id=run_id,
            conf=conf,
            triggered_by=DagRunTriggeredByType.REST_API,
            replace_microseconds=False,
        )
    except DagRunAlreadyExists:
        return "duplicate"
    return "created"


def create_app() -> FastAPI:
    app = FastAPI(title="CI/CD orchestrator", description=__doc__)
    logged_in = Depends(_get_user())

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.post("/webhook/github")(github_webhook)
    app.post("/webhook/gitlab")(gitlab_webhook)

    @app.get("/sessions", response_class=HTMLResponse)
    def sessions_page(repository: str = "", state: str = "", user: Any = logged_in) -> HTMLResponse:
        if not may_read_sessions(user):
            return _forbidden()
        return HTMLResponse(render_sessions(_session_states(), repository, state))

    @app.get("/sessions/{session_id}", response_class=HTMLResponse)
    def session_page(session_id: str, user: Any = logged_in) -> HTMLResponse:
        if not may_read_sessions(user):
            return _forbidden()
        found = [s for s in _session_states() if s.session_id == session_id]
        if not found:
            return HTMLResponse(_page("Unknown session", "<p>No such session.</p>"), 404)
        return HTMLResponse(render_session(found[0]))

    return app


#: GitHub sends at most 25 MB; a body beyond this is refused (413) before it is read whole
MAX_BODY_BYTES = 25 * 1024 * 1024
#: what a malformed payload may raise while it is parsed (deep nesting: RecursionError)
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, RecursionError, ConfError)

Parser = Callable[[str, str, Any, bool, str], tuple[Any, str]]


@dataclass(frozen=True)
class Hook:
    """How a hosting's deliveries are told apart and parsed."""

    name: str
    parse: Parser
    event_header: str
    delivery_of: Callable[[Request], str | None]
    needs: str


GITHUB_HOOK = Hook(
    "github",
    parse_event,
    EVENT_HEADER,
    lambda request: request.headers.get(DELIVERY_HEADER),
    f"{DELIVERY_HEADER} and {EVENT_HEADER}",
)
GITLAB_HOOK = Hook(
    "gitlab",
    gl.parse_gitlab_event,
    gl.EVENT_HEADER,
    lambda request: gl.delivery_id(
        request.headers.get(gl.EVENT_UUID_HEADER), request.headers.get(gl.WEBHOOK_UUID_HEADER)
    ),
    f"{gl.EVENT_HEADER} and {gl.EVENT_UUID_HEADER} (or {gl.WEBHOOK_UUID_HEADER})",
)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"the body is larger than {limit} bytes"}, status_code=413)


async def read_capped(request: Request) -> bytes | JSONResponse:
    """The body, read in chunks and refused (413) as soon as it passes the cap."""
    limit = MAX_BODY_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _too_large(limit)
    return bytes(body)


async def github_webhook(request: Request) -> JSONResponse:
    body = await read_capped(request)
    if isinstance(body, JSONResponse):
        return body
    if not verify_signature(
        _variable(SECRET_VARIABLE), body, request.headers.get(SIGNATURE_HEADER)
    ):
        return JSONResponse({"detail": "invalid or missing signature"}, status_code=401)
    return _deliver(GITHUB_HOOK, request, body)


async def gitlab_webhook(request: Request) -> JSONResponse:
    # the token is checked before the body is read
    if not gl.verify_token(_variable(gl.TOKEN_VARIABLE), request.headers.get(gl.TOKEN_HEADER)):
        return JSONResponse({"detail": "invalid or missing X-Gitlab-Token"}, status_code=401)
    body = await read_capped(request)
    if isinstance(body, JSONResponse):
        return body
    return _deliver(GITLAB_HOOK, request, body)


def _deliver(hook: Hook, request: Request, body: bytes) -> JSONResponse:
    """A delivery whose sender is verified: a failure opens a session (attempt 1 triggered),
    then the delivery is recorded; a replay is answered without a second session."""
    event = request.headers.get(hook.event_header, "")
    delivery = hook.delivery_of(request)
    if not delivery or not event:
        return JSONResponse({"detail": f"{hook.needs} are required"}, status_code=400)
    if deliveries.known(delivery):
        return JSONResponse({"status": "duplicate delivery", "delivery": delivery}, status_code=200)
    try:
        payload = json.loads(body)
        raw = _variable(CONFIG_VARIABLE)
        config = load_config(json.loads(raw) if raw else None)
        wanted, reason = hook.parse(
            event, delivery, payload, config.cancelled_is_failure, config.fix_branch_prefix
        )
    except _MALFORMED as exc:
        return JSONResponse({"detail": f"malformed payload: {exc}"[:500]}, status_code=400)
    except CicdError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=500)
    if wanted is None:
        deliveries.record(delivery)
        return JSONResponse({"status": "ignored", "reason": reason}, status_code=202)
    run_id = first_attempt_run_id(wanted)
    outcome = _trigger(run_id, wanted.conf())
    if outcome == "duplicate":
        outcome = _join(wanted)
    deliveries.record(delivery)
    log.info(
        "%s webhook %s %s: %s session for %s",
        hook.name,
        event,
        delivery,
        outcome,
        wanted.repository,
    )
    return JSONResponse(
        {"status": outcome, "dag_run_id": run_id, "priority": wanted.priority.value},
        status_code=202,
    )


def first_attempt_run_id(wanted: WebhookRequest) -> str:
    """The DAG run of the first attempt of the session ``wanted`` belongs to: one per push
    (repository, branch, head commit), so that the failed workflows of one push, delivered
    at once or one after the other, open one session (Airflow refuses a second DAG run with
    the same id). A delivery without a commit falls back to one per failed run."""
    if wanted.head_sha:
        sid = session_id_for(wanted.provider, wanted.repository, wanted.head_sha, wanted.branch)
        return attempt_run_id(sid, 1)
    key = wanted.run_id if wanted.run_id is not None else "unknown"
    return f"webhook__{wanted.provider}__{_digest(wanted.repository)}__{key}"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _join(wanted: WebhookRequest) -> str:
    """A later failed workflow of a push whose session is open joins it (its run is added to
    the session, which the next discovery reads); 'joined' or 'duplicate'. A session not
    saved yet reads every failed run of its push from the provider when it opens."""
    if wanted.run_id is None or not wanted.head_sha:
        return "duplicate"
    sid = session_id_for(wanted.provider, wanted.repository, wanted.head_sha, wanted.branch)
    joined: list[bool] = []

    def join(state: SessionState) -> bool:
        if state.status is SessionStatus.CLOSED:
            return False
        assert wanted.run_id is not None and wanted.head_sha
        added = join_run_id(state, wanted.run_id, wanted.repository, wanted.branch, wanted.head_sha)
        joined.append(added)
        return added

    try:
        state_store.update_session(sid, join)
    except KeyError:
        return "duplicate"
    except Exception as exc:  # best effort: the monitor reads the push's runs again
        log.warning("run %s could not join session %s: %s", wanted.run_id, sid, exc)
        return "duplicate"
    return "joined" if any(joined) else "duplicate"


# --------------------------------------------------------------------------- pages
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}th{background:#f3f3f3}
.closed{color:#555}pre{background:#f6f6f6;padding:1rem;white-space:pre-wrap}"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"{body}</body></html>"
    )


def _age(start: str | None) -> str:
    if not start:
        return "-"
    delta = datetime.datetime.now(datetime.UTC) - datetime.datetime.fromisoformat(start)
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes}m"


def _e(value: object) -> str:
    """Any value of a session as page text (escaped, quotes included)."""
    return html.escape(str(value), quote=True)


def _link(url: str) -> str:
    """A link when ``url`` is http(s), else its text only (no ``javascript:``, ``data:``...)."""
    label = _e(url.rsplit("/", 1)[-1] or url)
    if urllib.parse.urlsplit(url).scheme.lower() in ("http", "https"):
        return f"<a href='{_e(url)}' rel='noopener noreferrer'>{label}</a>"
    return label


def _links(items: list[str]) -> str:
    return " ".join(_link(u) for u in items) or "-"


def _dag_run_links(state: SessionState) -> str:
    out = []
    for item in state.links.dag_runs:
        dag_id, _, run_id = item.partition("/")
        href = f"/dags/{urllib.parse.quote(dag_id)}/runs/{urllib.parse.quote(run_id)}"
        label = dag_id.split("_")[2] if dag_id.count("_") > 2 else dag_id
        out.append(f"<a href='{_e(href)}'>{_e(label)}</a>")
    return " ".join(out) or "-"


def render_sessions(states: list[SessionState], repository: str = "", state: str = "") -> str:
    rows = [
        s
        for s in states
        if (not repository or repository in s.repository)
        and (not state or state in (s.status.value, s.outcome.value))
    ]
    rows.sort(
        key=lambda s: (
            s.status is SessionStatus.CLOSED,
            -PRIORITY_WEIGHT[s.priority],
            s.start_time or "",
        ),
        reverse=False,
    )
    head = (
        "<tr><th>Provider</th><th>Repository</th><th>Branch</th><th>Failed run</th>"
        "<th>Category</th>"
        "<th>Attempt</th><th>Strategy</th><th>State</th><th>Outcome</th><th>Priority</th>"
        "<th>Age</th><th>DAG runs</th><th>Pull requests</th><th>Issues</th></tr>"
    )
    body = []
    for s in rows:
        body.append(
            f"<tr class='{_e(s.status.value)}'>"
            f"<td>{_e(s.provider)}</td>"
            f"<td><a href='/cicd/sessions/{_e(urllib.parse.quote(s.session_id))}'>"
            f"{_e(s.repository)}</a></td><td>{_e(s.branch)}</td>"
            f"<td>{_links([s.links.failed_run]) if s.links.failed_run else _e(s.pipeline_id)}</td>"
            f"<td>{_e(primary_category(s).value)}</td>"
            f"<td>{_e(s.current_attempt)}/{_e(s.max_attempts)}</td>"
            f"<td>{_e(s.current_strategy.value if s.current_strategy else '-')}</td>"
            f"<td>{_e(s.status.value)}</td><td>{_e(s.outcome.value)}</td>"
            f"<td>{_e(s.priority.value)}</td>"
            f"<td>{_e(_age(s.start_time))}</td><td>{_dag_run_links(s)}</td>"
            f"<td>{_links(s.links.pull_requests)}</td><td>{_links(s.links.issues)}</td></tr>"
        )
    form = (
        f"<form method='get'>Repository <input name='repository' "
        f"value='{html.escape(repository)}'> State <input name='state' "
        f"value='{html.escape(state)}'> <button>Filter</button></form>"
    )
    table = f"<table>{head}{''.join(body)}</table>" if body else "<p>No sessions.</p>"
    return _page("CI/CD orchestration sessions", f"{form}<p>{len(rows)} session(s)</p>{table}")


def render_session(state: SessionState) -> str:
    timeline = []
    for rec in state.attempt_history:
        published = rec.published.kind.value if rec.published else "-"
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in rec.stage_timings.items())
        timeline.append(
            f"<tr><td>{_e(rec.attempt)}</td><td>{_e(rec.strategy.value)}</td>"
            f"<td>{_e(rec.started_at or '-')}</td><td>{_e(rec.status.value)}</td>"
            f"<td>{_e(published)}</td><td>{_e(rec.ci_conclusion or '-')}</td>"
            f"<td>{_e(timings)}</td></tr>"
        )
    table = (
        "<table><tr><th>Attempt</th><th>Strategy</th><th>Started</th><th>Status</th>"
        "<th>Published</th><th>CI</th><th>Stages</th></tr>" + "".join(timeline) + "</table>"
    )
    body = (
        f"<p><a href='/cicd/sessions'>All sessions</a></p><h2>Timeline</h2>{table}"
        f"<h2>Report</h2><pre>{html.escape(state.report)}</pre>"
    )
    return _page(f"Session {state.session_id}", body)

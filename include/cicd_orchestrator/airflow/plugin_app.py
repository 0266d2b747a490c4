"""The orchestrator's FastAPI app inside Airflow's API server (mounted at ``/cicd``):

- ``POST /cicd/webhook/github``: signed GitHub deliveries become sessions;
- ``GET /cicd/health``: for load balancers;
- ``GET /cicd/sessions`` and ``/cicd/sessions/{id}``: the sessions pages, for logged-in users
  only (Airflow's own authentication: the UI's JWT cookie or a bearer token).
"""

from __future__ import annotations

import datetime
import html
import json
import logging
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from cicd_orchestrator.airflow_names import CONFIG_VARIABLE, SESSION_PREFIX
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import PRIORITY_WEIGHT, SessionStatus, Strategy
from cicd_orchestrator.exceptions import CicdError, ConfError
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.serde import from_json_obj
from cicd_orchestrator.session import primary_category, session_id_for
from cicd_orchestrator.strategies import dag_id_for
from cicd_orchestrator.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SECRET_VARIABLE,
    SIGNATURE_HEADER,
    DeliveryCache,
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


def _trigger(run_id: str, conf: dict[str, Any]) -> str:
    """Trigger attempt 1; 'created' or 'duplicate' (the run id is one per failed run)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType

    try:
        trigger_dag(
            dag_id_for(Strategy.STANDARD_PARALLEL_FIXING),
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

    @app.post("/webhook/github")
    async def github_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if not verify_signature(
            _variable(SECRET_VARIABLE), body, request.headers.get(SIGNATURE_HEADER)
        ):
            return JSONResponse({"detail": "invalid or missing signature"}, status_code=401)
        return _handle_delivery(request, body)

    @app.post("/webhook/gitlab")
    async def gitlab_webhook(request: Request) -> JSONResponse:
        from cicd_orchestrator.webhooks_gitlab import TOKEN_HEADER, TOKEN_VARIABLE, verify_token

        # the token is checked before the body is read
        if not verify_token(_variable(TOKEN_VARIABLE), request.headers.get(TOKEN_HEADER)):
            return JSONResponse({"detail": "invalid or missing X-Gitlab-Token"}, status_code=401)
        return _handle_gitlab_delivery(request, await request.body())

    @app.get("/sessions", response_class=HTMLResponse)
    def sessions_page(repository: str = "", state: str = "", user: Any = logged_in) -> HTMLResponse:
        return HTMLResponse(render_sessions(_session_states(), repository, state))

    @app.get("/sessions/{session_id}", response_class=HTMLResponse)
    def session_page(session_id: str, user: Any = logged_in) -> HTMLResponse:
        found = [s for s in _session_states() if s.session_id == session_id]
        if not found:
            return HTMLResponse(_page("Unknown session", "<p>No such session.</p>"), 404)
        return HTMLResponse(render_session(found[0]))

    return app


def _handle_delivery(request: Request, body: bytes) -> JSONResponse:
    delivery = request.headers.get(DELIVERY_HEADER, "")
    event = request.headers.get(EVENT_HEADER, "")
    if not delivery or not event:
        return JSONResponse(
            {"detail": f"{DELIVERY_HEADER} and {EVENT_HEADER} are required"}, status_code=400
        )
    try:
        payload = json.loads(body)
        raw = _variable(CONFIG_VARIABLE)
        config = load_config(json.loads(raw) if raw else None)
        wanted, reason = parse_event(event, delivery, payload, config.cancelled_is_failure)
    except (ValueError, ConfError) as exc:
        return JSONResponse({"detail": f"malformed payload: {exc}"}, status_code=400)
    except CicdError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=500)
    if deliveries.seen(delivery):
        return JSONResponse({"status": "duplicate delivery", "delivery": delivery}, status_code=200)
    if wanted is None:
        return JSONResponse({"status": "ignored", "reason": reason}, status_code=202)
    key = wanted.run_id if wanted.run_id is not None else wanted.head_sha
    run_id = f"webhook__{session_id_for(wanted.provider, wanted.repository, 0)}__{key}"
    outcome = _trigger(run_id, wanted.conf())
    log.info("webhook %s %s: %s session for %s", event, delivery, outcome, wanted.repository)
    return JSONResponse(
        {"status": outcome, "dag_run_id": run_id, "priority": wanted.priority.value},
        status_code=202,
    )


def _handle_gitlab_delivery(request: Request, body: bytes) -> JSONResponse:
    """A GitLab delivery (token already verified): Pipeline Hook / Job Hook failures open a
    session with provider "gitlab", as the GitHub route does."""
    from cicd_orchestrator import webhooks_gitlab as gl

    event = request.headers.get(gl.EVENT_HEADER, "")
    delivery = gl.delivery_id(
        request.headers.get(gl.EVENT_UUID_HEADER), request.headers.get(gl.WEBHOOK_UUID_HEADER)
    )
    if not delivery or not event:
        needed = f"{gl.EVENT_HEADER} and {gl.EVENT_UUID_HEADER} (or {gl.WEBHOOK_UUID_HEADER})"
        return JSONResponse({"detail": f"{needed} are required"}, status_code=400)
    try:
        payload = json.loads(body)
        raw = _variable(CONFIG_VARIABLE)
        config = load_config(json.loads(raw) if raw else None)
        wanted, reason = gl.parse_gitlab_event(
            event, delivery, payload, config.cancelled_is_failure
        )
    except (ValueError, ConfError) as exc:
        return JSONResponse({"detail": f"malformed payload: {exc}"}, status_code=400)
    except CicdError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=500)
    if deliveries.seen(delivery):
        return JSONResponse({"status": "duplicate delivery", "delivery": delivery}, status_code=200)
    if wanted is None:
        return JSONResponse({"status": "ignored", "reason": reason}, status_code=202)
    run_id = f"webhook__{session_id_for(wanted.provider, wanted.repository, 0)}__{wanted.run_id}"
    outcome = _trigger(run_id, wanted.conf())
    log.info("gitlab webhook %s %s: %s session for %s", event, delivery, outcome, wanted.repository)
    return JSONResponse(
        {"status": outcome, "dag_run_id": run_id, "priority": wanted.priority.value},
        status_code=202,
    )


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


def _links(items: list[str]) -> str:
    return (
        " ".join(
            f"<a href='{html.escape(u)}'>{html.escape(u.rsplit('/', 1)[-1])}</a>" for u in items
        )
        or "-"
    )


def _dag_run_links(state: SessionState) -> str:
    out = []
    for item in state.links.dag_runs:
        dag_id, _, run_id = item.partition("/")
        out.append(
            f"<a href='/dags/{html.escape(dag_id)}/runs/{html.escape(run_id)}'>"
            f"{html.escape(dag_id.split('_')[2] if dag_id.count('_') > 2 else dag_id)}"
            "</a>"
        )
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
            f"<tr class='{s.status.value}'>"
            f"<td>{html.escape(s.provider)}</td>"
            f"<td><a href='/cicd/sessions/{html.escape(s.session_id)}'>"
            f"{html.escape(s.repository)}</a></td><td>{html.escape(s.branch)}</td>"
            f"<td>{_links([s.links.failed_run]) if s.links.failed_run else s.pipeline_id}</td>"
            f"<td>{primary_category(s).value}</td><td>{s.current_attempt}/{s.max_attempts}</td>"
            f"<td>{s.current_strategy.value if s.current_strategy else '-'}</td>"
            f"<td>{s.status.value}</td><td>{s.outcome.value}</td><td>{s.priority.value}</td>"
            f"<td>{_age(s.start_time)}</td><td>{_dag_run_links(s)}</td>"
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
            f"<tr><td>{rec.attempt}</td><td>{rec.strategy.value}</td>"
            f"<td>{html.escape(rec.started_at or '-')}</td><td>{rec.status}</td>"
            f"<td>{published}</td><td>{html.escape(rec.ci_conclusion or '-')}</td>"
            f"<td>{html.escape(timings)}</td></tr>"
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

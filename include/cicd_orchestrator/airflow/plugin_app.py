"""The orchestrator's FastAPI app inside Airflow's API server (mounted at ``/cicd``):

- ``POST /cicd/webhook/github`` and ``/cicd/webhook/gitlab``: signed (GitHub) or
  token-carrying (GitLab) deliveries of failed runs become sessions; bodies are capped;
- ``GET /cicd/health``: for load balancers;
- ``GET /cicd/sessions`` (paginated: ``page``, ``page_size``) and ``/cicd/sessions/{id}``:
  the sessions pages; ``GET /cicd/metrics`` and ``/cicd/api/metrics`` (``days``): the Metrics
  page and the same figures as JSON. For logged-in users only (Airflow's own authentication:
  the UI's JWT cookie or a bearer token) who may read the runs of the session DAGs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from cicd_orchestrator.airflow import pages, sessions_db, state_store
from cicd_orchestrator.airflow.names import CONFIG_VARIABLE, attempt_run_id
from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import SessionStatus
from cicd_orchestrator.exceptions import CicdError, ConfError
from cicd_orchestrator.models import SessionState
from cicd_orchestrator.session import join_run_id, metrics, session_id_for
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


_FORBIDDEN = "Reading the sessions needs read access to the runs of the cicd DAGs."
#: the most days the Metrics page counts sessions per day of
MAX_DAYS = 366
summaries_cache = sessions_db.SummaryCache()


def _forbidden() -> HTMLResponse:
    return HTMLResponse(pages.page("Forbidden", f"<p>{_FORBIDDEN}</p>"), 403)


def _session_rows() -> list[sessions_db.Row]:
    return sessions_db.session_rows()


def _summaries() -> list[metrics.SessionSummary]:
    return summaries_cache.summaries(_session_rows())


def _session_page(session_id: str) -> HTMLResponse:
    try:
        text = sessions_db.session_text(session_id)
        if text is None:
            return HTMLResponse(pages.page("Unknown session", "<p>No such session.</p>"), 404)
        state = sessions_db.parse_state(text)
    except Exception as exc:  # undecryptable (another Fernet key) or unparsable
        log.warning("session %s does not read: %s", session_id, exc)
        body = "<p>The state of this session does not read (see the API server's log).</p>"
        return HTMLResponse(pages.page("Unreadable session", body), 500)
    return HTMLResponse(pages.render_session(state))


def _metrics(days: int) -> metrics.Metrics:
    today = datetime.datetime.now(datetime.UTC).date()
    return metrics.compute(_summaries(), today, days)


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
    _add_pages(app, logged_in)
    return app


def _add_pages(app: FastAPI, logged_in: Any) -> None:
    """The sessions and Metrics pages and the metrics JSON, for users who may read them."""

    @app.get("/sessions", response_class=HTMLResponse)
    def sessions_page(
        repository: str = "",
        state: str = "",
        page: int = Query(1, ge=1),
        page_size: int = Query(pages.DEFAULT_PAGE_SIZE, ge=1, le=pages.MAX_PAGE_SIZE),
        user: Any = logged_in,
    ) -> HTMLResponse:
        if not may_read_sessions(user):
            return _forbidden()
        listing = pages.select_sessions(_summaries(), repository, state, page, page_size)
        return HTMLResponse(pages.render_sessions(listing, repository, state))

    @app.get("/sessions/{session_id}", response_class=HTMLResponse)
    def session_page(session_id: str, user: Any = logged_in) -> HTMLResponse:
        return _session_page(session_id) if may_read_sessions(user) else _forbidden()

    @app.get("/metrics", response_class=HTMLResponse)
    def metrics_page(
        days: int = Query(30, ge=1, le=MAX_DAYS), user: Any = logged_in
    ) -> HTMLResponse:
        if not may_read_sessions(user):
            return _forbidden()
        return HTMLResponse(pages.render_metrics(_metrics(days), days))

    @app.get("/api/metrics")
    def metrics_json(
        days: int = Query(30, ge=1, le=MAX_DAYS), user: Any = logged_in
    ) -> JSONResponse:
        if not may_read_sessions(user):
            return JSONResponse({"detail": _FORBIDDEN}, status_code=403)
        body = metrics.to_json(_metrics(days))
        body["generated_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        body["days"] = days
        return JSONResponse(body)


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


# The handlers read the body on the API server's event loop and do everything that touches
# the metadata database (Variables, the DAG run) on a worker thread: a database call on the
# loop would hold up every request of the API server, the tasks' own included, while it
# waits (with SQLite, until its busy timeout, as the request holding the lock needs the loop).


async def github_webhook(request: Request) -> JSONResponse:
    body = await read_capped(request)
    if isinstance(body, JSONResponse):
        return body
    secret = await run_in_threadpool(_variable, SECRET_VARIABLE)
    if not verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER)):
        return JSONResponse({"detail": "invalid or missing signature"}, status_code=401)
    return await run_in_threadpool(_deliver, GITHUB_HOOK, request, body)


async def gitlab_webhook(request: Request) -> JSONResponse:
    # the token is checked before the body is read
    token = await run_in_threadpool(_variable, gl.TOKEN_VARIABLE)
    if not gl.verify_token(token, request.headers.get(gl.TOKEN_HEADER)):
        return JSONResponse({"detail": "invalid or missing X-Gitlab-Token"}, status_code=401)
    body = await read_capped(request)
    if isinstance(body, JSONResponse):
        return body
    return await run_in_threadpool(_deliver, GITLAB_HOOK, request, body)


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

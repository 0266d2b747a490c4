"""Open sessions through Airflow's REST API and follow them (demo, benchmarks, tests)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import requests

from cicd_devkit.airflow_stack import ApiClient
from cicd_orchestrator.airflow.names import CONFIG_VARIABLE, SESSION_PREFIX, attempt_run_id
from cicd_orchestrator.constants import SessionStatus, Strategy
from cicd_orchestrator.models import Run, SessionState
from cicd_orchestrator.serde import from_json_obj
from cicd_orchestrator.session import session_id_of_run, session_runs
from cicd_orchestrator.strategies import dag_id_for
from cicd_orchestrator.webhooks.github import sign

FIRST_DAG = dag_id_for(Strategy.STANDARD_PARALLEL_FIXING)


def configure(client: ApiClient, config: dict[str, Any]) -> None:
    client.set_variable(
        CONFIG_VARIABLE,
        json.dumps(config),
        "CI/CD orchestrator configuration (overrides the defaults)",
    )


def open_session(
    client: ApiClient,
    repository: str,
    run_id: int,
    provider: str = "local",
    run: Run | None = None,
    timeout: float = 300.0,
    *,
    session_run: bool = False,
) -> tuple[str, int]:
    """Trigger attempt 1 for a failed run; returns (session id, HTTP status).

    A session is one per push (its id comes from the run's commit and branch): with
    ``run`` it is known at once, without it the session that holds the run is waited for.
    The request is a DAG run of its own, as a person's at the REST API, which hands over to
    the session's DAG run; ``session_run`` (with ``run``) triggers the session's DAG run
    itself, as the webhook and the sweep do.
    """
    conf = {"repository": repository, "run_id": run_id, "provider": provider}
    if session_run:
        if run is None:
            raise ValueError("session_run needs the run")
        sid = session_id_of_run(provider, run)
        resp = client.trigger(FIRST_DAG, conf, run_id=attempt_run_id(sid, 1))
        return sid, resp.status_code
    resp = client.trigger(FIRST_DAG, conf)
    if run is not None:
        return session_id_of_run(provider, run), resp.status_code
    return session_of_run(client, repository, run_id, timeout), resp.status_code


def signed_delivery(
    secret: str, payload: Any, event: str = "workflow_run"
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a GitHub webhook delivery of ``payload``, signed with
    ``secret``, as GitHub sends it."""
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "Content-Type": "application/json",
    }
    return body, headers


def failure_event(run: Run) -> dict[str, Any]:
    """GitHub's ``workflow_run`` completed event for the failed ``run``."""
    return {
        "action": "completed",
        "repository": {"full_name": run.repository},
        "workflow_run": {
            "id": run.id,
            "name": run.workflow,
            "path": run.workflow_path,
            "conclusion": "failure",
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "event": run.event,
        },
    }


def deliver_failure(base_url: str, secret: str, run: Run, timeout: float = 120) -> str:
    """Deliver the failed ``run`` to the orchestrator's webhook as GitHub does; returns the
    session id the webhook opens or joins."""
    body, headers = signed_delivery(secret, failure_event(run))
    resp = requests.post(
        f"{base_url}/cicd/webhook/github", data=body, headers=headers, timeout=timeout
    )
    if resp.status_code != 202 or resp.json().get("status") not in (
        "created",
        "duplicate",
        "joined",
    ):
        raise RuntimeError(f"the webhook answered {resp.status_code}: {resp.text[:500]}")
    return session_id_of_run("github", run)


def session_of_run(client: ApiClient, repository: str, run_id: int, timeout: float) -> str:
    """The id of the session that holds the failed run ``run_id`` (waited for)."""
    deadline = time.monotonic() + timeout
    while True:
        for sid, state in sessions(client).items():
            if state.repository == repository and run_id in session_runs(state):
                return sid
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no session holds run {run_id} of {repository}")
        time.sleep(1.0)


def sessions(client: ApiClient) -> dict[str, SessionState]:
    out = {}
    for key, value in client.variables(SESSION_PREFIX).items():
        try:
            state = from_json_obj(SessionState, json.loads(value))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(
                f"session Variable {key} does not parse: {exc}: {value[:2000]}"
            ) from exc
        out[state.session_id] = state
    return out


def describe(state: SessionState) -> str:
    strategy = state.current_strategy.value if state.current_strategy else "-"
    return (
        f"{state.repository:<32} attempt {state.current_attempt}/{state.max_attempts} "
        f"{strategy:<34} {state.status.value:<20} {state.outcome.value}"
    )


def follow(
    client: ApiClient,
    session_ids: Iterable[str],
    timeout: float,
    on_change: Callable[[SessionState], None] | None = None,
    poll: float = 2.0,
) -> dict[str, SessionState]:
    """Poll the session Variables until every session is closed (or the timeout)."""
    wanted = set(session_ids)
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    current: dict[str, SessionState] = {}
    while time.monotonic() < deadline:
        current = {k: v for k, v in sessions(client).items() if k in wanted}
        for sid, state in current.items():
            line = describe(state)
            if seen.get(sid) != line:
                seen[sid] = line
                if on_change:
                    on_change(state)
        if len(current) == len(wanted) and all(
            s.status is SessionStatus.CLOSED for s in current.values()
        ):
            return current
        time.sleep(poll)
    return current

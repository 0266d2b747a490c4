"""The links of a session's tasks (the failing run, the pull request, the issue), computed
when a task ends: from the session the task itself read or saved, with no request to Airflow,
and never another session's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from cicd_devkit.builders import new_state

from cicd_orchestrator.airflow import state_store
from cicd_orchestrator.airflow.links import SESSION_LINKS
from cicd_orchestrator.models import SessionState


class CountingVariables:
    """The glue's Variables, counting the reads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return self.inner.get(key, default)

    def set(self, key: str, value: str, description: str | None = None) -> None:
        self.inner.set(key, value, description)


@pytest.fixture
def counted(variables, monkeypatch):
    store = CountingVariables(variables)
    monkeypatch.setattr(state_store, "_variable", lambda: store)
    monkeypatch.setattr(state_store, "_latest", None)
    return store


class FakeTI:
    """A task instance whose XComs are the given outputs by task id."""

    def __init__(self, outputs: dict[str, Any] | None = None) -> None:
        self.outputs = outputs or {}
        self.pulls = 0

    def xcom_pull(self, task_ids: str) -> Any:
        self.pulls += 1
        return self.outputs.get(task_ids)


def saved(pull_request: str, issue: str = "", other: bool = False) -> SessionState:
    state = new_state()
    if other:
        state.session_id += "-other"
    state.links.failed_run = "https://ci.example/run/1"
    state.links.pull_requests.append(pull_request)
    if issue:
        state.links.issues.append(issue)
    state_store.save_session(state)
    return state


def links(operator: Any, ti: Any) -> list[str]:
    return [link.get_link(operator, ti_key=ti) for link in SESSION_LINKS]


def ticket_task(state: SessionState) -> Any:
    """A task as the runner renders it: its ticket resolved from open_session's output."""
    return SimpleNamespace(op_kwargs={"ticket": {"session_id": state.session_id, "attempt": 1}})


def test_a_task_that_saved_its_session_links_it_without_a_request(counted):
    state = saved("https://git.example/pr/7", "https://git.example/issues/9")
    counted.reads, ti = 0, FakeTI()
    got = links(ticket_task(state), ti)
    assert got == [
        "https://ci.example/run/1",
        "https://git.example/pr/7",
        "https://git.example/issues/9",
    ]
    assert (counted.reads, ti.pulls) == (0, 0)


def test_a_task_links_its_own_session_not_the_last_one_the_process_saw(counted):
    mine = saved("https://git.example/pr/1")
    saved("https://git.example/pr/2", other=True)  # another session, seen last
    counted.reads = 0
    assert links(ticket_task(mine), FakeTI())[1] == "https://git.example/pr/1"
    assert counted.reads == 1  # read once, as saved; the other links reuse that read


def test_the_task_that_made_the_session_finds_it_by_its_output(counted):
    state = saved("https://git.example/pr/3")
    ti = FakeTI({"open_session": {"session_id": state.session_id, "attempt": 1}})
    counted.reads = 0
    assert links(SimpleNamespace(op_kwargs={}), ti)[1] == "https://git.example/pr/3"
    assert counted.reads == 0


def test_a_task_of_no_session_has_no_links(counted):
    saved("https://git.example/pr/4")  # the sweep may read sessions; they are not its own
    assert links(SimpleNamespace(op_kwargs={}), FakeTI()) == ["", "", ""]


def test_a_link_that_is_not_a_web_address_is_left_out(counted):
    state = saved("javascript:alert(1)")
    assert links(ticket_task(state), FakeTI())[1] == ""

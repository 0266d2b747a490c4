"""Task bodies named by module and function: imported at the first call, given what their
signature asks for."""

from __future__ import annotations

import pickle
import sys
import types

import pytest

from cicd_orchestrator.airflow.bodies import Body, task


@pytest.fixture
def module(monkeypatch):
    mod = types.ModuleType("cicd_test_bodies")

    def plain(ticket, group):
        return ("plain", ticket, group)

    def with_context(strategy, **context):
        return ("ctx", strategy, sorted(context))

    def callback(context):
        return ("callback", context["ti"])

    mod.plain, mod.with_context, mod.callback = plain, with_context, callback
    monkeypatch.setitem(sys.modules, "cicd_test_bodies", mod)
    return mod


def test_a_body_is_imported_only_when_it_is_called(monkeypatch):
    monkeypatch.delitem(sys.modules, "cicd_test_absent_module", raising=False)
    body = Body("cicd_test_absent_module", "anything")  # naming it imports nothing
    assert "cicd_test_absent_module" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        body()


def test_the_body_gets_what_its_signature_names_by_airflows_rule(module):
    context = {"ticket": "t", "group": "lint", "ti": object(), "params": {}}
    assert Body("cicd_test_bodies", "plain")(**context) == ("plain", "t", "lint")
    bound = Body("cicd_test_bodies", "with_context", "standard")
    assert bound(ticket="t", ti=1) == ("ctx", "standard", ["ti", "ticket"])


def test_a_callback_gets_the_context_positionally(module):
    assert Body("cicd_test_bodies", "callback")({"ti": "x"}) == ("callback", "x")


def test_bodies_compare_by_name_and_survive_a_copy(module):
    body = task("open_session", "dag", "standard")
    assert body == pickle.loads(pickle.dumps(body))
    assert body != task("open_session", "dag", "rollback")
    assert body.__name__ == "open_session"

"""Opening a session: the request is checked, the failed run resolved."""

from __future__ import annotations

import pytest

from cicd_orchestrator.exceptions import ConfError, NotAFailedRunError
from cicd_orchestrator.stages import opening


def test_parse_request_validates_the_conf():
    req = opening.parse_request({"repository": "acme/shop", "run_id": "12"})
    assert (req.repository, req.run_id, req.provider) == ("acme/shop", 12, "local")
    for bad in (
        [],
        {"repository": "acme"},
        {"repository": "a/b", "run_id": 0},
        {"repository": "a/b", "run_id": True},
        {"repository": "a/b", "run_id": 1, "config": []},
    ):
        with pytest.raises(ConfError):
            opening.parse_request(bad)


def test_a_green_run_opens_no_session(lint_attempt):
    provider, made = lint_attempt.provider, lint_attempt.made
    green = next(r for r in provider.list_runs(made.repo) if r.conclusion.value == "success")
    request = opening.parse_request({"repository": made.repo, "run_id": green.id})
    with pytest.raises(NotAFailedRunError, match="not a failed run"):
        opening.failed_run_of(provider, request, lint_attempt.attempt.config)
    failed = opening.parse_request({"repository": made.repo, "run_id": made.head_run.id})
    assert (
        opening.failed_run_of(provider, failed, lint_attempt.attempt.config).id == made.head_run.id
    )

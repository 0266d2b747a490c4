"""A change with a repair that asks for a draft (an LLM patch) opens its pull request as a
draft, on every hosting; the others are ready for review."""

from __future__ import annotations

import pytest
from cicd_devkit.hostile import StartWorld, attempt_on, fix

from cicd_orchestrator.publish.change import publish_change


@pytest.mark.parametrize("kind", ["local", "github", "gitlab"])
def test_a_draft_repair_opens_a_draft_pull_request(start: StartWorld, kind: str) -> None:
    world = start(kind)
    draft = publish_change(attempt_on(world), [fix("An LLM patch", draft=True)], "r")
    assert draft.pull_request is not None and draft.pull_request.draft
    ready = publish_change(attempt_on(world, number=2), [fix()], "r")
    assert ready.pull_request is not None and not ready.pull_request.draft

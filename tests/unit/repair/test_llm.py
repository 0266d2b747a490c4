from __future__ import annotations

import json
import py_compile
import sys

import pytest

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.git import checkout
from cicd_orchestrator.models import Context, Excerpt, Failure
from cicd_orchestrator.repair.llm import (
    INSTRUCTIONS,
    NOT_CONFIGURED,
    LLMPatchFixer,
    extract_diff,
)

pydantic_ai = pytest.importorskip("pydantic_ai", reason="pydantic-ai is not installed")
from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.models.test import TestModel  # noqa: E402

GOOD = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
BROKEN = GOOD.replace("def add(a, b):", "def add(a, b)")
FIX = """diff --git a/app/calc.py b/app/calc.py
--- a/app/calc.py
+++ b/app/calc.py
@@ -1,2 +1,2 @@
-def add(a, b)
+def add(a, b):
     return a + b
"""
STALE = FIX.replace("-def add(a, b)\n", "-def add(x, y)\n")
LOG = """  File "/home/runner/work/shop/shop/app/calc.py", line 1
    def add(a, b)
                 ^
SyntaxError: expected ':'"""
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"


def syntax_failure(**overrides):
    values = dict(
        job="test",
        job_id=7,
        run_id=3,
        step="Run tests",
        category=FailureCategory.TEST,
        confidence=0.9,
        signature="sig",
        message="SyntaxError: expected ':'",
        excerpts=[Excerpt(start=41, end=44, text=LOG, category=FailureCategory.TEST)],
        evidence=["SyntaxError: expected ':' in app/calc.py line 1", f"token {TOKEN}"],
        captures={"file": "app/calc.py", "line": "1"},
    )
    values.update(overrides)
    return Failure(**values)


@pytest.fixture
def broken(repo):
    repo.commit({"app/calc.py": GOOD, "app/__init__.py": "", "README.md": "shop\n"}, "green")
    bad = repo.commit({"app/calc.py": BROKEN}, "refactor add")
    return repo, bad


def fixed_context(repo, sha, failures=None, **config):
    context = Context(failing_sha=sha, culprit_sha=sha, culprit_reason="bisect")
    config.setdefault("llm_conn_id", "llm_test")
    return repo.context(failures or [syntax_failure()], sha, context, **config)


def answering(text):
    """An agent factory whose model answers ``text``; it records the connection ids asked."""
    asked = []

    def factory(conn_id, instructions):
        asked.append(conn_id)
        return Agent(TestModel(custom_output_text=text), instructions=instructions)

    factory.asked = asked
    return factory


def test_a_missing_colon_is_repaired_and_proposed(broken, tmp_path):
    repo, sha = broken
    factory = answering(FIX)
    result = LLMPatchFixer(agent_factory=factory).propose(fixed_context(repo, sha))
    assert factory.asked == ["llm_test"]
    assert result.applicable and not result.unrepaired
    [repair] = result.repairs
    assert repair.fixer == "llm-patch" and repair.kind is RepairKind.CHANGE
    assert repair.confidence == 0.5 and repair.files == ["app/calc.py"]
    assert repair.category is FailureCategory.TEST and repair.jobs == ["test"]
    assert "+def add(a, b):" in repair.patch and repair.commit_message
    with checkout(repo.path, sha) as ws:
        assert ws.apply(repair.patch)
        assert (ws.path / "app/calc.py").read_text() == GOOD
        py_compile.compile(str(ws.path / "app/calc.py"), doraise=True)


def test_the_prompt_holds_excerpt_culprit_diff_and_files_but_no_environment(broken, monkeypatch):
    repo, sha = broken
    monkeypatch.setenv("CICD_LLM_TEST_ENV_SECRET", "s3cr3t-from-the-environment")
    seen: dict[str, str] = {}

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen["prompt"] = "\n".join(
            str(part.content) for m in messages for part in m.parts if hasattr(part, "content")
        )
        seen["instructions"] = info.instructions or ""
        return ModelResponse(parts=[TextPart(FIX)])

    def factory(conn_id, instructions):
        return Agent(FunctionModel(model), instructions=instructions)

    result = LLMPatchFixer(agent_factory=factory).propose(fixed_context(repo, sha))
    assert result.repairs
    prompt = seen["prompt"]
    assert "log lines 41-44" in prompt and "SyntaxError: expected ':'" in prompt
    assert "-def add(a, b):\n+def add(a, b)\n" in prompt  # the culprit's diff
    assert "--- app/calc.py" in prompt and "return a - b" in prompt  # the file involved
    assert "s3cr3t-from-the-environment" not in prompt
    assert TOKEN not in prompt and "***" in prompt
    assert "ONLY a unified diff" in seen["instructions"]


def test_a_diff_that_does_not_apply_is_reported_and_nothing_is_proposed(broken):
    repo, sha = broken
    result = LLMPatchFixer(agent_factory=answering(STALE)).propose(fixed_context(repo, sha))
    assert result.applicable and not result.repairs
    assert len(result.unrepaired) == 1
    assert "does not apply" in result.unrepaired[0] and "app/calc.py" in result.unrepaired[0]


def test_an_answer_in_markdown_fences_is_cleaned(broken):
    repo, sha = broken
    answer = f"Here is the fix:\n\n```diff\n{FIX}```\n\nIt adds the missing colon."
    result = LLMPatchFixer(agent_factory=answering(answer)).propose(fixed_context(repo, sha))
    [repair] = result.repairs
    assert repair.files == ["app/calc.py"] and "It adds" not in repair.patch


@pytest.mark.parametrize(
    "answer",
    [
        FIX,
        f"```diff\n{FIX}```",
        f"```patch\n{FIX}\n```\n",
        f"Sure.\n```\n{FIX}```",
        f"The fix:\n{FIX}",
        FIX.rstrip("\n"),
    ],
)
def test_extract_diff(answer):
    assert extract_diff(answer) == FIX


def test_an_answer_without_a_diff_is_reported(broken):
    repo, sha = broken
    result = LLMPatchFixer(agent_factory=answering("NO_PATCH")).propose(fixed_context(repo, sha))
    assert not result.repairs
    assert "no unified diff" in result.unrepaired[0]


def test_a_failing_model_call_is_reported(broken):
    repo, sha = broken

    def model(messages, info):
        raise RuntimeError("the endpoint is down")

    def factory(conn_id, instructions):
        return Agent(FunctionModel(model), instructions=instructions)

    result = LLMPatchFixer(agent_factory=factory).propose(fixed_context(repo, sha))
    assert not result.repairs
    assert "the endpoint is down" in result.unrepaired[0]


def test_not_configured_says_so_and_imports_nothing_of_the_provider(broken, monkeypatch):
    repo, sha = broken
    monkeypatch.setitem(sys.modules, "airflow.providers.common.ai.hooks.pydantic_ai", None)
    monkeypatch.setitem(sys.modules, "pydantic_ai", None)

    def factory(conn_id, instructions):
        raise AssertionError("no agent without a connection")

    result = LLMPatchFixer(agent_factory=factory).propose(
        repo.context([syntax_failure()], sha, Context(failing_sha=sha, culprit_sha=sha))
    )
    assert not result.applicable and not result.repairs
    assert result.unrepaired == [NOT_CONFIGURED]
    # the default factory is not touched either
    assert not LLMPatchFixer().propose(repo.context([syntax_failure()], sha)).applicable


def test_symptoms_are_left_alone(broken):
    repo, sha = broken
    failure = syntax_failure(root_cause=False, symptom_of="build")
    factory = answering(FIX)
    result = LLMPatchFixer(agent_factory=factory).propose(fixed_context(repo, sha, [failure]))
    assert not result.applicable and not result.repairs and factory.asked == []


def test_without_an_agent_factory_the_model_is_not_asked(broken, monkeypatch):
    repo, sha = broken
    monkeypatch.setitem(sys.modules, "airflow.providers.common.ai.hooks.pydantic_ai", None)
    result = LLMPatchFixer().propose(fixed_context(repo, sha))
    assert result.applicable and not result.repairs
    assert result.unrepaired == [
        "LLM patch: no way to look up LLM connections was given, so the model of connection "
        "llm_test was not asked"
    ]


def test_the_context_agent_factory_serves_when_the_fixer_has_none(broken):
    repo, sha = broken
    factory = answering(FIX)
    ctx = fixed_context(repo, sha)
    ctx.agent_factory = factory
    [repair] = LLMPatchFixer().propose(ctx).repairs
    assert factory.asked == ["llm_test"] and repair.files == ["app/calc.py"]
    # the fixer's own factory wins over the context's
    own = answering(FIX)
    assert LLMPatchFixer(agent_factory=own).propose(ctx).repairs
    assert own.asked == ["llm_test"] and factory.asked == ["llm_test"]


def test_a_common_ai_connection_serves_as_the_context_agent_factory(broken, monkeypatch):
    hooks = pytest.importorskip(
        "airflow.providers.common.ai.hooks.pydantic_ai",
        reason="apache-airflow-providers-common-ai is not installed",
    )

    def from_connection(conn_id, instructions=INSTRUCTIONS):
        """What the Airflow glue passes as the agent factory: the connection's model."""
        hook = hooks.PydanticAIHook.get_hook(conn_id)
        return hook.create_agent(output_type=str, instructions=instructions)

    conn = {"conn_type": "pydanticai", "extra": {"model": "test"}}
    monkeypatch.setenv("AIRFLOW_CONN_LLM_PATCH_TEST", json.dumps(conn))
    agent = from_connection("llm_patch_test", INSTRUCTIONS)
    assert isinstance(agent, Agent) and isinstance(agent.model, TestModel)

    # pydantic-ai's test model answers prose, which the fixer reports as no diff
    repo, sha = broken
    ctx = fixed_context(repo, sha, llm_conn_id="llm_patch_test")
    ctx.agent_factory = from_connection
    result = LLMPatchFixer().propose(ctx)
    assert result.applicable and not result.repairs
    assert "no unified diff" in result.unrepaired[0]
    assert "success (no tool calls)" in result.unrepaired[0]

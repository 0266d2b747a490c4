"""Optional LLM repair: an agent reads the failure and returns a unified diff.

The model comes from an ``apache-airflow-providers-common-ai`` connection (``llm_conn_id`` in
the configuration, e.g. type ``pydanticai`` with ``{"model": "openai:gpt-5"}`` in its extra).
Without that connection the fixer says it is not configured and imports nothing of the
provider. The prompt holds the failing jobs' excerpts and evidence, the culprit commit's diff
and the files involved, each bounded and passed through ``redact``; never the environment.
The patch is applied in the workspace and proposed like any other change: the caller
validates it before anything is published.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from cicd_orchestrator.config import ALL_FIXERS
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.exceptions import WorkspaceError
from cicd_orchestrator.models import Failure, FixerResult, Repair
from cicd_orchestrator.redact import redact
from cicd_orchestrator.repair.base import Fixer, RepairContext
from cicd_orchestrator.repair.workspace import Workspace

log = logging.getLogger(__name__)

NAME = "llm-patch"
NOT_CONFIGURED = (
    "LLM patch: not configured "
    "(set llm_conn_id to an apache-airflow-providers-common-ai connection)"
)
NO_PATCH = "NO_PATCH"
INSTRUCTIONS = (
    "You repair failing CI jobs. You are given the failing jobs' log excerpts, the diff of the "
    "commit that broke the build and the content of the files involved. Answer with ONLY a "
    "unified diff in git format (`diff --git a/<path> b/<path>`, `--- a/<path>`, "
    "`+++ b/<path>`, `@@` hunks with correct context lines), paths relative to the repository "
    "root, and nothing else: no prose, no explanation. Make the smallest change that makes "
    "the failing jobs pass; do not disable or delete tests and do not touch CI configuration "
    f"unless it is the cause. If you cannot propose a fix, answer with {NO_PATCH}."
)

# Bounds of the prompt (characters).
CULPRIT_DIFF_CHARS = 20_000
FILE_CHARS = 12_000
FILES_MAX = 8
EXCERPT_CHARS = 4_000
PROMPT_CHARS = 80_000

_PATH_TOKEN = re.compile(r"(?<![\w/.-])/?(?:[\w.-]+/)*[\w.-]+\.[A-Za-z][\w]{0,9}(?![\w/])")
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(?P<body>.*?)(?:\n```|\Z)", re.S)
_DIFF_START = re.compile(r"^(?:diff --git |--- (?:a/|/dev/null))", re.M)


class PatchAgent(Protocol):
    """What the fixer needs of a pydantic-ai ``Agent``."""

    def run_sync(self, user_prompt: str) -> Any: ...


# (connection id, instructions) -> agent
AgentFactory = Callable[[str, str], PatchAgent]


def _agent_for(conn_id: str, instructions: str = INSTRUCTIONS) -> PatchAgent:
    """A pydantic-ai agent on the model of a common-ai connection (any ``pydanticai*`` type)."""
    from airflow.providers.common.ai.hooks.pydantic_ai import PydanticAIHook

    hook = PydanticAIHook.get_hook(conn_id)
    agent: PatchAgent = hook.create_agent(output_type=str, instructions=instructions)
    return agent


def extract_diff(answer: str) -> str:
    """The unified diff in a model's answer: markdown fences and prose around it removed."""
    text = answer.replace("\r\n", "\n")
    fenced = [m.group("body") for m in _FENCE.finditer(text)]
    with_diff = [body for body in fenced if _DIFF_START.search(body)]
    if with_diff:
        text = "\n".join(body.rstrip("\n") for body in with_diff)
    start = _DIFF_START.search(text)
    if not start:
        return ""
    lines = text[start.start() :].rstrip().splitlines()
    while lines and lines[-1].startswith("```"):
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut ...]\n"


def _inside(ws: Workspace, candidate: str) -> str | None:
    """``candidate`` as a path relative to the workspace when such a file exists there;
    absolute paths of another checkout are matched by their longest existing suffix."""
    root = ws.path.resolve()
    parts = [p for p in Path(candidate).parts if p not in ("/", ".")]
    for i in range(len(parts)):
        rel = Path(*parts[i:])
        path = (root / rel).resolve()
        if ".git" in rel.parts or not path.is_relative_to(root):
            continue
        if path.is_file():
            return path.relative_to(root).as_posix()
    return None


def _mentioned_paths(failures: Iterable[Failure]) -> list[str]:
    seen: list[str] = []
    for failure in failures:
        texts = [*failure.captures.values(), *failure.evidence, failure.message]
        texts += [e.text for e in failure.excerpts]
        for text in texts:
            for match in _PATH_TOKEN.finditer(text or ""):
                if match.group(0) not in seen:
                    seen.append(match.group(0))
    return seen


def involved_files(ws: Workspace, failures: list[Failure], culprit_files: list[str]) -> list[str]:
    """Files named by the failures (captures, excerpts) that exist in the workspace, then
    the files the culprit changed; at most ``FILES_MAX``."""
    found: list[str] = []
    for candidate in [*_mentioned_paths(failures), *culprit_files]:
        rel = _inside(ws, candidate)
        if rel and rel not in found:
            found.append(rel)
    return found[:FILES_MAX]


def _read_text(path: Path) -> str | None:
    with path.open("rb") as handle:
        data = handle.read(FILE_CHARS * 4)
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _failure_section(failure: Failure) -> list[str]:
    out = [f"### Job `{failure.job}`" + (f", step `{failure.step}`" if failure.step else "")]
    out.append(f"category: {failure.category.value}; message: {failure.message or '-'}")
    for excerpt in failure.excerpts:
        out.append(f"log lines {excerpt.start}-{excerpt.end}:")
        out.append("```\n" + _bounded(excerpt.text, EXCERPT_CHARS).rstrip("\n") + "\n```")
    if failure.evidence:
        out.append("evidence:\n" + "\n".join(f"- {e}" for e in failure.evidence[:20]))
    if failure.captures:
        out.append("details: " + ", ".join(f"{k}={v}" for k, v in failure.captures.items()))
    if failure.tests:
        out.append("failing tests: " + ", ".join(failure.tests[:20]))
    return out


def build_prompt(ctx: RepairContext, ws: Workspace, failures: list[Failure]) -> str:
    """The user prompt: failures, culprit diff, files involved; bounded and redacted."""
    parts = [f"Repository {ctx.repository} at commit {ctx.head_sha}.", "## Failing jobs"]
    for failure in failures:
        parts += _failure_section(failure)
    culprit = ctx.context.culprit_sha if ctx.context else None
    culprit_files: list[str] = []
    if culprit:
        try:
            show = ws.git("show", "--format=commit %H%n%n    %s%n", "--patch", culprit)
            names = ws.git("show", "--format=", "--name-only", culprit)
            culprit_files = [line for line in names.splitlines() if line]
            parts += [
                f"## The commit that broke the build ({culprit[:12]})",
                "```diff\n" + _bounded(show, CULPRIT_DIFF_CHARS).rstrip("\n") + "\n```",
            ]
        except WorkspaceError as exc:
            log.info("no diff of the culprit %s: %s", culprit[:12], exc)
    files = involved_files(ws, failures, culprit_files)
    if files:
        parts.append("## Files involved (current content)")
    for rel in files:
        text = _read_text(ws.path / rel)
        if text is not None:
            parts.append(f"--- {rel}\n```\n{_bounded(text, FILE_CHARS).rstrip(chr(10))}\n```")
    parts.append(
        "Answer with only the unified diff (git format, paths relative to the repository root)."
    )
    return _bounded(redact("\n\n".join(parts)), PROMPT_CHARS)


def _apply(ws: Workspace, patch: str) -> str | None:
    """Apply ``patch`` (hunk counts recounted when they are off); the reason when it fails."""
    if ws.apply(patch):
        return None
    try:
        ws.git("apply", "--check", "--recount", "-", input_text=patch)
        ws.git("apply", "--recount", "-", input_text=patch)
    except WorkspaceError as exc:
        return str(exc)
    return None


class LLMPatchFixer(Fixer):
    """Asks the configured model for a unified diff of the root failures."""

    name = NAME

    def __init__(self, agent_factory: AgentFactory | None = None) -> None:
        self.agent_factory: AgentFactory = agent_factory or _agent_for

    def propose(self, ctx: RepairContext) -> FixerResult:
        start = time.monotonic()
        conn_id = ctx.config.llm_conn_id
        disabled = NAME in ALL_FIXERS and NAME not in ctx.config.enabled_fixers
        if not conn_id or disabled:
            result = FixerResult(fixer=self.name, applicable=False)
            result.unrepaired.append(NOT_CONFIGURED if not conn_id else "LLM patch: disabled")
            return result
        relevant = self.relevant(ctx.failures)
        result = FixerResult(fixer=self.name, applicable=bool(relevant))
        if relevant:
            with ctx.workspace() as ws:
                self._propose_in(ctx, ws, conn_id, relevant, result)
        result.seconds = round(time.monotonic() - start, 3)
        return result

    def _ask(self, conn_id: str, prompt: str) -> str:
        agent = self.agent_factory(conn_id, INSTRUCTIONS)
        # run_sync needs an event loop of its own: in a thread of its own it never meets one
        # the calling thread may already be running
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(agent.run_sync, prompt).result()
        return str(getattr(answer, "output", answer))

    def _propose_in(
        self,
        ctx: RepairContext,
        ws: Workspace,
        conn_id: str,
        failures: list[Failure],
        result: FixerResult,
    ) -> None:
        prompt = build_prompt(ctx, ws, failures)
        log.info("asking the model of connection %s for a patch (%d chars)", conn_id, len(prompt))
        try:
            answer = self._ask(conn_id, prompt)
        except ImportError as exc:
            result.unrepaired.append(
                f"LLM patch: apache-airflow-providers-common-ai is not installed ({exc})"
            )
            return
        except Exception as exc:  # the provider's and the model's errors vary widely
            log.warning("LLM patch: the model call failed: %s", exc)
            result.unrepaired.append(f"LLM patch: the model call failed: {redact(str(exc))}")
            return
        patch = extract_diff(answer)
        if not patch:
            result.unrepaired.append(
                "LLM patch: the model proposed no unified diff "
                f"(answer: {redact(answer.strip()[:200])!r})"
            )
            return
        error = _apply(ws, patch)
        if error:
            result.unrepaired.append(f"LLM patch: the proposed diff does not apply: {error}")
            return
        diff = ws.diff()
        files = ws.changed_files()
        if not diff:
            result.unrepaired.append("LLM patch: the proposed diff changes nothing")
            return
        jobs = sorted({f.job for f in failures})
        category = failures[0].category if failures else FailureCategory.UNKNOWN
        result.repairs.append(
            Repair(
                fixer=self.name,
                kind=RepairKind.CHANGE,
                category=category,
                description=f"LLM-proposed change of {', '.join(files)} for {', '.join(jobs)}",
                jobs=jobs,
                patch=diff,
                files=files,
                commit_message=(
                    f"Fix {', '.join(jobs)}: LLM-proposed change of {', '.join(files)}\n\n"
                    f"Proposed by the {self.name} fixer (connection {conn_id}) from the failure "
                    "excerpts and the culprit diff; validated before publishing."
                ),
                confidence=0.5,
                evidence=[e for f in failures for e in f.evidence[:2]],
                notes=[f"model answer: {len(answer)} characters, prompt: {len(prompt)}"],
            )
        )

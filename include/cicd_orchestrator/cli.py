"""The ``cicd`` command: tools for people and for measurement.

Subcommands are registered in :data:`COMMANDS` (name -> (add arguments, run)), so other
parts of the project add theirs without touching the parser code::

    cicd analyze FAIL_LOG [--baseline PASS_LOG] [--format auto|github|gitlab|jenkins] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A problem worth one line on stderr and a non-zero exit."""


# --------------------------------------------------------------------------- analyze
def _analyze_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("fail_log", metavar="FAIL_LOG", help="the log of the failed job")
    p.add_argument("--baseline", metavar="PASS_LOG", help="a passing log of the same job")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "github", "gitlab", "jenkins", "travis", "plain"],
        help="log format (default: detect)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--max-excerpts", type=int, default=5, help="excerpts to report (default 5)")
    p.add_argument(
        "--workflow",
        metavar="FILE",
        help="the workflow file of the job: a secret its failing step reads and the log "
        "shows empty makes the failure a missing secret",
    )
    p.add_argument(
        "--job", help="the job's name (for the category, and in the workflow: default any job)"
    )
    p.add_argument(
        "--step", help="the failing step's name (default: the step the log shows failing)"
    )


def analysis_json(analysis: Any) -> dict[str, Any]:
    """The JSON shape of ``cicd analyze --json`` for a :class:`LogAnalysis`."""
    return {
        "format": analysis.format,
        "category": analysis.category.value,
        "confidence": analysis.confidence,
        "reasons": analysis.reasons,
        "signature": analysis.signature,
        "pattern": analysis.pattern,
        "recipe": analysis.recipe,
        "message": analysis.message,
        "captures": analysis.captures,
        "tests": analysis.tests,
        "excerpts": [
            {
                "start": e.start,
                "end": e.end,
                "category": e.category.value,
                "pattern": e.pattern,
                "score": e.score,
                "text": e.text,
            }
            for e in analysis.excerpts
        ],
        "steps": [
            {"name": s.name, "conclusion": s.conclusion, "start": s.start, "end": s.end}
            for s in analysis.steps
        ],
        "lines": analysis.lines,
        "bytes": analysis.bytes,
        "warnings": analysis.warnings,
    }


def _summary(analysis: Any) -> str:
    out = [
        f"category:   {analysis.category.value} (confidence {analysis.confidence:.2f})",
        *(f"  because   {reason}" for reason in analysis.reasons),
        f"pattern:    {analysis.pattern or '-'}   recipe: {analysis.recipe or '-'}",
        f"message:    {analysis.message or '-'}",
        f"signature:  {analysis.signature}",
        f"log:        {analysis.format}, {analysis.lines} lines, {analysis.bytes} bytes",
    ]
    failed = [s for s in analysis.steps if s.conclusion in ("failure", "cancelled")]
    if failed:
        out.append(
            "failed step: " + ", ".join(f"{s.name} (lines {s.start}-{s.end})" for s in failed)
        )
    if analysis.tests:
        out.append("failed tests: " + ", ".join(analysis.tests[:10]))
    for i, e in enumerate(analysis.excerpts, 1):
        out.append(f"\n#{i} lines {e.start}-{e.end} [{e.category.value}/{e.pattern or '-'}]")
        lines = e.text.splitlines()
        out.extend("    " + line[:200] for line in lines[:15])
        if len(lines) > 15:
            out.append(f"    ... ({len(lines) - 15} more lines)")
    for w in analysis.warnings:
        out.append(f"warning: {w}")
    return "\n".join(out)


def _analyze(ns: argparse.Namespace) -> int:
    from cicd_orchestrator.logs.analyze import analyze_log

    try:
        fail = open(ns.fail_log, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CliError(f"cannot read {ns.fail_log}: {exc.strerror or exc}") from exc
    try:
        base = open(ns.baseline, "rb") if ns.baseline else None  # noqa: SIM115
    except OSError as exc:
        fail.close()
        raise CliError(f"cannot read {ns.baseline}: {exc.strerror or exc}") from exc
    try:
        analysis = analyze_log(
            fail,
            base,
            ns.format,
            max_excerpts=max(1, ns.max_excerpts),
            names=[n for n in (ns.step, ns.job) if n],
        )
    except OSError as exc:
        raise CliError(f"cannot read the log: {exc}") from exc
    finally:
        fail.close()
        if base is not None:
            base.close()
    if ns.workflow:
        analysis = _with_workflow(ns, analysis)
    if ns.json:
        print(json.dumps(analysis_json(analysis), ensure_ascii=False))
    else:
        print(_summary(analysis))
    return 0


def _with_workflow(ns: argparse.Namespace, analysis: Any) -> Any:
    """The analysis with what the workflow and the log together say of missing secrets."""
    from cicd_orchestrator.analysis.secrets import (
        apply_to_analysis,
        find_missing_secrets,
        log_lines,
    )

    try:
        with open(ns.workflow, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        with open(ns.fail_log, "rb") as log_fh:
            evidence = find_missing_secrets(text, ns.workflow, ns.job, ns.step, log_lines(log_fh))
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename or ns.workflow}: {exc.strerror or exc}") from exc
    return apply_to_analysis(analysis, evidence)


COMMANDS: dict[str, tuple[str, AddArguments, Run]] = {
    "analyze": ("say why a CI job failed, from its log", _analyze_args, _analyze),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cicd", description="CI/CD Failure Orchestrator tools")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.WARNING, stream=sys.stderr)
    try:
        return int(ns._run(ns))
    except CliError as exc:
        print(f"cicd {ns.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `cicd analyze x | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Entry points of the local provider's processes.

``python -m cicd_orchestrator.ci.local.hook post-receive <root> <repo>``
    the bare repository's post-receive hook: each pushed branch (not a deletion) starts a
    run per workflow that its push trigger matches (with the files the push changed) and
    the ``synchronize`` runs of the open pull requests from it; each pushed tag starts a
    run per workflow whose push trigger matches the tag; returns at once.
``python -m cicd_orchestrator.ci.local.hook execute <root> <repo> <run_id> <attempt>``
    the detached process that executes one attempt of a run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from cicd_orchestrator.ci.local.provider import LocalProvider

log = logging.getLogger(__name__)

ZERO_SHA = "0" * 40


def pushed_refs(lines: Iterable[str]) -> list[tuple[str, str, str]]:
    """(old sha, new sha, ref) of each updated or created branch or tag in post-receive
    input (deletions left out)."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        old, new, ref = parts
        if new == ZERO_SHA or not ref.startswith(("refs/heads/", "refs/tags/")):
            continue
        out.append((old, new, ref))
    return out


def pushed_branches(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(branch, new sha) of each updated or created branch in post-receive input."""
    return [
        (ref[len("refs/heads/") :], new)
        for _old, new, ref in pushed_refs(lines)
        if ref.startswith("refs/heads/")
    ]


def post_receive(root: str, repo: str, lines: Iterable[str]) -> int:
    provider = LocalProvider(root)
    for old, sha, ref in pushed_refs(lines):
        name = ref.split("/", 2)[2]
        try:
            if ref.startswith("refs/tags/"):
                run_ids = provider.start_runs(repo, sha, name, "push", tag=name)
            else:
                run_ids = provider.on_push(repo, name, old, sha)
        except Exception as exc:  # a hook must never break the push itself
            log.exception("starting CI for %s failed", ref)
            print(f"cicd-local: could not start CI for {name}: {exc}")
            continue
        for run_id in run_ids:
            print(f"cicd-local: started run {run_id} for {name} at {sha[:12]}")
    return 0


def execute(root: str, repo: str, run_id: int, attempt: int) -> int:
    provider = LocalProvider(root)
    provider.apply_job_settings()
    try:
        conclusion = provider.execute_attempt(repo, run_id, attempt)
    except Exception as exc:
        log.exception("run %s attempt %s crashed", run_id, attempt)
        provider.fail_attempt(repo, run_id, attempt, f"the run process failed: {exc}")
        return 1
    log.info("run %s attempt %s: %s", run_id, attempt, conclusion.value)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if len(args) == 3 and args[0] == "post-receive":
        return post_receive(args[1], args[2], sys.stdin)
    if len(args) == 5 and args[0] == "execute":
        return execute(args[1], args[2], int(args[3]), int(args[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

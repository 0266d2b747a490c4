"""Entry points of the local provider's processes.

``python -m cicd_orchestrator.ci.local.hook post-receive <root> <repo>``
    the bare repository's post-receive hook: each pushed branch (not a deletion, not a tag)
    starts a run per workflow that its push trigger matches; returns at once.
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


def pushed_branches(lines: Iterable[str]) -> list[tuple[str, str]]:
    """(branch, new sha) of each updated or created branch in post-receive input."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        _old, new, ref = parts
        if new == ZERO_SHA or not ref.startswith("refs/heads/"):
            continue
        out.append((ref[len("refs/heads/") :], new))
    return out


def post_receive(root: str, repo: str, lines: Iterable[str]) -> int:
    provider = LocalProvider(root)
    for branch, sha in pushed_branches(lines):
        try:
            run_ids = provider.start_runs(repo, sha, branch, event="push")
        except Exception as exc:  # a hook must never break the push itself
            log.exception("starting CI for %s failed", branch)
            print(f"cicd-local: could not start CI for {branch}: {exc}")
            continue
        for run_id in run_ids:
            print(f"cicd-local: started run {run_id} for {branch} at {sha[:12]}")
    return 0


def execute(root: str, repo: str, run_id: int, attempt: int) -> int:
    provider = LocalProvider(root)
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

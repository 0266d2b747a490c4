"""Which events start a workflow: GitHub's push, pull_request and pull_request_target filters."""

from __future__ import annotations

import textwrap

import pytest

from cicd_orchestrator.actions.triggers import filter_names, glob_match
from cicd_orchestrator.actions.workflow import InvalidWorkflowError, Workflow, parse_workflow

JOBS = "jobs:\n  a:\n    steps:\n      - run: 'true'\n"


def wf(on: str) -> Workflow:
    return parse_workflow(textwrap.dedent(on) + JOBS, ".github/workflows/w.yml")


@pytest.mark.parametrize(
    ("name", "pattern", "matches"),
    [
        ("src/app.py", "*.py", False),  # * stops at /
        ("app.py", "*.py", True),
        ("src/app.py", "**.py", True),
        ("README.md", "**/README.md", True),  # **/ is zero or more folders
        ("docs/a/README.md", "**/README.md", True),
        ("docs/a/b.md", "docs/**", True),
        ("docs", "docs/**", False),
        ("release/v1.0", "release/v[0-9].[0-9]", True),
        ("release/vx.0", "release/v[0-9].[0-9]", False),
        ("Octocat", "Octoc?at", True),  # ? : zero or one of the preceding character
        ("Ocat", "Oc?at", True),
        ("Octoooocat", "Octo+cat", True),
        ("Octcat", "Octo+cat", False),
        ("a*b", "a\\*b", True),
        ("axb", "a\\*b", False),
    ],
)
def test_glob_follows_githubs_filter_patterns(name: str, pattern: str, matches: bool) -> None:
    assert glob_match(name, pattern) is matches


def test_ordered_patterns_last_match_decides() -> None:
    patterns = ["src/**", "!src/generated/**", "src/generated/keep.py"]
    assert filter_names(["src/a.py"], patterns)
    assert not filter_names(["src/generated/x.py"], patterns)
    assert filter_names(["src/generated/keep.py"], patterns)
    assert filter_names(["docs/x", "src/a.py"], patterns)  # one file is enough


def test_on_as_string_list_and_mapping() -> None:
    assert wf("on: push\n").triggered_by("push", branch="any")
    assert not wf("on: push\n").triggered_by("pull_request", base_branch="main")
    listed = wf("on: [push, pull_request_target]\n")
    assert listed.triggered_by("pull_request_target", base_branch="main", action="opened")
    assert wf("on:\n  workflow_dispatch:\n").triggered_by("workflow_dispatch")


def test_push_with_branch_and_path_filters_needs_both() -> None:
    w = wf(
        """\
        on:
          push:
            branches: [main]
            paths: ['src/**', '!src/docs/**']
        """
    )
    assert w.triggered_by("push", branch="main", changed_paths=["src/a.py"])
    assert not w.triggered_by("push", branch="main", changed_paths=["README.md"])
    assert not w.triggered_by("push", branch="main", changed_paths=["src/docs/x.md"])
    assert not w.triggered_by("push", branch="fix", changed_paths=["src/a.py"])
    assert not w.triggered_by("push", branch="main", changed_paths=[])
    # unknown changes (GitHub cannot compute the diff): the workflow runs
    assert w.triggered_by("push", branch="main")


def test_paths_ignore_runs_when_some_file_is_not_ignored() -> None:
    w = wf("on:\n  push:\n    paths-ignore: ['docs/**', '*.md']\n")
    assert not w.triggered_by("push", branch="x", changed_paths=["docs/a.md", "README.md"])
    assert w.triggered_by("push", branch="x", changed_paths=["docs/a.md", "src/a.py"])


def test_tags_and_branches_filters_of_push() -> None:
    tags = wf("on:\n  push:\n    tags: ['v*']\n")
    assert tags.triggered_by("push", tag="v1.2")
    assert not tags.triggered_by("push", tag="nightly")
    assert not tags.triggered_by("push", branch="main")  # tags only: no branch pushes
    branches = wf("on:\n  push:\n    branches: [main]\n    paths: [src/**]\n")
    assert not branches.triggered_by("push", tag="v1")  # branches only: no tag pushes
    plain = wf("on:\n  push:\n    paths: [src/**]\n")
    assert plain.triggered_by("push", tag="v1", changed_paths=["README"])  # no paths for tags
    ignore = wf("on:\n  push:\n    tags-ignore: ['v0.*']\n")
    assert ignore.triggered_by("push", tag="v1.0") and not ignore.triggered_by("push", tag="v0.1")


def test_pull_request_filters_apply_to_the_base_branch_and_types() -> None:
    w = wf(
        """\
        on:
          push:
            branches: [main]
          pull_request:
            branches: [main]
        """
    )
    # the fix branch gets no push run, but its pull request into main gets a run
    assert not w.triggered_by("push", branch="cicd-fix/1")
    assert w.triggered_by("pull_request", branch="cicd-fix/1", base_branch="main", action="opened")
    assert not w.triggered_by("pull_request", branch="main", base_branch="dev", action="opened")
    assert w.triggered_by("pull_request", branch="x", base_branch="main", action="synchronize")
    assert not w.triggered_by("pull_request", branch="x", base_branch="main", action="closed")
    typed = wf("on:\n  pull_request:\n    types: [closed]\n")
    assert typed.triggered_by("pull_request", base_branch="main", action="closed")
    assert not typed.triggered_by("pull_request", base_branch="main", action="opened")


def test_pull_request_paths_and_target() -> None:
    w = wf("on:\n  pull_request_target:\n    paths-ignore: ['**.md']\n")
    assert w.triggered_by(
        "pull_request_target", base_branch="main", changed_paths=["a.py"], action="opened"
    )
    assert not w.triggered_by(
        "pull_request_target", base_branch="main", changed_paths=["a.md"], action="opened"
    )
    assert not w.triggered_by("pull_request", base_branch="main", action="opened")


@pytest.mark.parametrize(
    ("on", "words"),
    [
        ("on:\n  push:\n    branches: [a]\n    branches-ignore: [b]\n", "cannot be used together"),
        ("on:\n  push:\n    paths: [a]\n    paths-ignore: [b]\n", "cannot be used together"),
        ("on:\n  push:\n    branches: {a: 1}\n", "list of patterns"),
        ("on:\n  push:\n    paths: ['src/[a']\n", "not closed"),
        ("on:\n  pull_request:\n    types: {a: 1}\n", "types"),
    ],
)
def test_bad_filters_are_workflow_errors_with_a_line(on: str, words: str) -> None:
    with pytest.raises(InvalidWorkflowError) as info:
        wf(on)
    assert words in info.value.message and info.value.line == 2

"""Workflow files: parsing, triggers, matrix expansion, errors with line numbers."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from cicd_orchestrator.actions.run_info import (
    EventName,
    RunInfo,
    new_job_token,
    pull_request_payload,
)
from cicd_orchestrator.actions.workflow import (
    InvalidWorkflowError,
    expand_jobs,
    expand_matrix,
    glob_match,
    parse_workflow,
    resolve_job_names,
)

FULL = textwrap.dedent(
    """\
    name: Build and test
    on:
      push:
        branches: [main, 'release/**', '!release/old']
      pull_request:
      workflow_dispatch:
        inputs:
          level:
            default: quick
    env:
      GLOBAL: one
    defaults:
      run:
        working-directory: src
        shell: bash
    jobs:
      build:
        name: Build
        runs-on: ubuntu-latest
        timeout-minutes: 10
        env:
          JOB: two
        outputs:
          version: ${{ steps.v.outputs.version }}
        steps:
          - uses: actions/checkout@v4
            with:
              fetch-depth: 0
          - id: v
            name: Version
            run: |
              echo "version=1" >> "$GITHUB_OUTPUT"
              echo done
            env:
              STEP: three
            working-directory: other
            shell: sh
            timeout-minutes: 2
            continue-on-error: true
      test:
        needs: build
        if: github.event_name == 'push'
        continue-on-error: ${{ matrix.experimental }}
        strategy:
          fail-fast: false
          matrix:
            python: ["3.10", "3.11"]
            experimental: [false]
        steps:
          - run: pytest
      deploy:
        needs: [build, test]
        steps:
          - run: echo deploy
    """
)


def test_parse_full_workflow() -> None:
    wf = parse_workflow(FULL, ".github/workflows/ci.yml")
    assert wf.name == "Build and test"
    assert set(wf.on) == {"push", "pull_request", "workflow_dispatch"}
    assert wf.env == {"GLOBAL": "one"}
    assert (wf.working_directory, wf.shell) == ("src", "bash")
    assert list(wf.jobs) == ["build", "test", "deploy"]
    build = wf.jobs["build"]
    assert build.name == "Build" and build.timeout_minutes == 10 and build.env == {"JOB": "two"}
    assert build.outputs == {"version": "${{ steps.v.outputs.version }}"}
    checkout, version = build.steps
    assert checkout.uses == "actions/checkout@v4" and checkout.with_ == {"fetch-depth": 0}
    assert checkout.default_name == "Run actions/checkout@v4"
    assert version.id == "v" and version.name == "Version"
    assert version.default_name == 'Run echo "version=1" >> "$GITHUB_OUTPUT"'
    assert version.env == {"STEP": "three"} and version.working_directory == "other"
    assert version.shell == "sh" and version.timeout_minutes == 2
    assert version.continue_on_error is True
    test = wf.jobs["test"]
    assert test.needs == ["build"] and test.if_ == "github.event_name == 'push'"
    assert test.fail_fast is False and test.matrix is not None
    assert wf.jobs["deploy"].needs == ["build", "test"]
    assert wf.dispatch_inputs() == {"level": "quick"}


def test_on_key_is_not_a_boolean_and_short_forms() -> None:
    wf = parse_workflow("on: push\njobs:\n  a:\n    steps:\n      - run: 'true'\n", "w.yml")
    assert wf.on == {"push": None} and wf.name == "w.yml"
    wf = parse_workflow("on: [push, pull_request]\njobs: {a: {steps: [{run: x}]}}\n", "w.yml")
    assert set(wf.on) == {"push", "pull_request"}


def test_push_branch_filters() -> None:
    wf = parse_workflow(FULL, "ci.yml")
    assert wf.triggered_by("push", "main")
    assert wf.triggered_by("push", "release/1.0/rc")
    assert not wf.triggered_by("push", "release/old")
    assert not wf.triggered_by("push", "feature/x")
    assert wf.triggered_by("pull_request", "anything")
    ignore = parse_workflow(
        "on:\n  push:\n    branches-ignore: ['wip/*']\njobs: {a: {steps: [{run: x}]}}\n", "w"
    )
    assert ignore.triggered_by("push", "main") and not ignore.triggered_by("push", "wip/x")
    tags = parse_workflow("on:\n  push:\n    tags: ['v*']\njobs: {a: {steps: [{run: x}]}}\n", "w")
    assert not tags.triggered_by("push", "main")
    assert not ignore.triggered_by("schedule", "main")


def test_glob() -> None:
    assert glob_match("feature/a", "feature/*")
    assert not glob_match("feature/a/b", "feature/*")
    assert glob_match("feature/a/b", "feature/**")
    assert glob_match("v1", "v1?") and glob_match("v", "v1?") and not glob_match("v2", "v1?")


def test_matrix_product_exclude_include() -> None:
    matrix = {
        "os": ["ubuntu", "windows"],
        "python": ["3.10", "3.11"],
        "exclude": [{"os": "windows", "python": "3.10"}],
        "include": [
            {"python": "3.11", "coverage": True},  # extends the 3.11 combinations
            {"os": "macos", "python": "3.12"},  # a new combination
        ],
    }
    combos = expand_matrix(matrix)
    assert combos == [
        {"os": "ubuntu", "python": "3.10"},
        {"os": "ubuntu", "python": "3.11", "coverage": True},
        {"os": "windows", "python": "3.11", "coverage": True},
        {"os": "macos", "python": "3.12"},
    ]
    assert expand_matrix(None) == [{}]
    assert expand_matrix({"include": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]


def test_job_instances_are_named_like_github() -> None:
    wf = parse_workflow(FULL, "ci.yml")
    names = [i.name for i in expand_jobs(wf)]
    assert names == ["Build", "test (3.10, false)", "test (3.11, false)", "deploy"]
    text = FULL.replace("  test:\n", "  test:\n    name: Py ${{ matrix.python }}\n")
    assert [i.name for i in expand_jobs(parse_workflow(text, "ci.yml"))][1:3] == [
        "Py 3.10",
        "Py 3.11",
    ]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("on: push\njobs:\n  a:\n    steps:\n      - run: echo [\n     bad: : x\n", 6, ""),
        ("on: push\njobs:\n  a:\n\tsteps: []\n", 4, "\\t"),
        ("on: push\n", 1, "missing 'jobs'"),
        ("jobs: {}\n", 1, "missing 'on'"),
        ("on: push\njobs:\n  a:\n    runs-on: x\n", 3, "steps"),
        (
            "on: push\njobs:\n  a:\n    steps:\n      - run: x\n        uses: y\n",
            5,
            "exactly one of",
        ),
        ("on: push\njobs:\n  a:\n    needs: [zz]\n    steps: [{run: x}]\n", 4, "'zz'"),
        (
            "on: push\njobs:\n  a:\n    needs: b\n    steps: [{run: x}]\n"
            "  b:\n    needs: a\n    steps: [{run: x}]\n",
            None,
            "cycle",
        ),
        ("on: push\njobs:\n  a:\n    steps: [{run: x}]\n  a:\n    steps: []\n", 5, "duplicate"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int | None, words: str) -> None:
    with pytest.raises(InvalidWorkflowError) as info:
        parse_workflow(text, ".github/workflows/ci.yml")
    err = info.value
    assert err.path == ".github/workflows/ci.yml"
    if line is not None:
        assert err.line == line
        assert f".github/workflows/ci.yml#L{line}: " in str(err)
    assert words in err.message


# --------------------------------------------------------------------------- job names
def _names(text: str, contexts: dict[str, Any] | None = None) -> list[str]:
    return [i.name for i in expand_jobs(parse_workflow(textwrap.dedent(text), "w.yml"), contexts)]


def test_matrix_names_as_github_forms_them() -> None:
    text = """\
        on: push
        jobs:
          test:
            strategy:
              matrix:
                python: ['3.11', 3.10]
                os: [ubuntu-latest]
                include:
                  - python: '3.11'
                    coverage: true
                  - python: '3.13'
                    experimental: true
                    os: macos-latest
            steps: [{run: x}]
        """
    # an include's added key is not in the name of the combination it extends; a new
    # combination shows its matrix keys first, then the others; 3.10 read as a number is 3.1
    assert _names(text) == [
        "test (3.11, ubuntu-latest)",
        "test (3.1, ubuntu-latest)",
        "test (3.13, macos-latest, true)",
    ]


def test_names_with_expressions_have_no_suffix_and_see_github_not_env() -> None:
    text = """\
        on: push
        env:
          LEVEL: full
        jobs:
          test:
            name: Python ${{ matrix.python }} on ${{ github.event_name }}${{ env.LEVEL }}
            strategy:
              matrix:
                python: ['3.11', '3.12']
            steps: [{run: x}]
          static:
            name: Lint
            strategy:
              matrix:
                config: [{name: strict, level: 2}, {name: loose, level: ''}]
            steps: [{run: x}]
        """
    names = _names(text, {"github": {"event_name": "pull_request"}, "env": {"LEVEL": "x"}})
    assert names == [
        "Python 3.11 on pull_request",
        "Python 3.12 on pull_request",
        "Lint (strict, 2)",  # an object shows its values; empty ones are left out
        "Lint (loose)",
    ]


def test_long_names_are_cut_as_github_cuts_them() -> None:
    text = f"on: push\njobs:\n  t:\n    name: {'n' * 93}\n    strategy:\n      matrix:\n"
    text += "        v: [abcdefgh]\n    steps: [{run: x}]\n"
    (name,) = _names(text)
    assert name == "n" * 93 + " (ab..." and len(name) == 100


def test_github_job_names_find_their_local_instances() -> None:
    text = """\
        on: [push, pull_request]
        jobs:
          build:
            name: Build (${{ github.event_name }})
            steps: [{run: x}]
          test:
            name: Python ${{ matrix.python }} / ${{ github.ref_name }}
            strategy:
              matrix:
                python: ['3.11', '3.12']
            steps: [{run: x}]
          lint:
            strategy:
              matrix:
                tool: [ruff, mypy]
            steps: [{run: x}]
          long:
            name: {long}
            strategy:
              matrix:
                v: [abcdefgh, ijklmnop]
            steps: [{run: x}]
        """.replace("{long}", "L" * 95)
    wf = parse_workflow(textwrap.dedent(text), "w.yml")
    local = expand_jobs(wf, {"github": {"event_name": "push", "ref_name": "cicd-validation"}})
    # names as GitHub reports them for a pull request run
    reported = [
        "Build (pull_request)",
        "Python 3.12 / 7/merge",
        "lint (mypy)",
        "L" * 95 + " (...",
        "lint",
        "nope",
    ]
    found = resolve_job_names(local, reported)
    assert found["Build (pull_request)"] == ["Build (push)"]
    assert found["Python 3.12 / 7/merge"] == ["Python 3.12 / cicd-validation"]
    assert found["lint (mypy)"] == ["lint (mypy)"]
    cut = "L" * 95 + " (..."
    assert found[cut] == [cut, cut]  # two long instances share the cut name: both replay
    assert found["lint"] == ["lint (ruff)", "lint (mypy)"]
    assert found["nope"] == []


# --------------------------------------------------------------------------- run info
def _info(event: Any, ref: str, token: str = "") -> RunInfo:
    wf = parse_workflow("on: [push, pull_request]\njobs: {a: {steps: [{run: x}]}}\n", "w.yml")
    return RunInfo(
        git_dir="/g",
        sha="h" * 40,
        workflow=wf,
        ref=ref,
        repository="acme/widgets",
        run_id=1,
        run_number=1,
        run_attempt=1,
        event=event,
        log_dir=Path("/tmp"),
        token=token,
    )


def test_pull_request_context_and_variables_as_on_github() -> None:
    payload = pull_request_payload(7, "opened", "cicd-fix/a", "h" * 40, "main", "b" * 40)
    info = _info(EventName("pull_request", payload), "refs/pull/7/merge", token="ghs_x")
    github = info.github_context()
    assert github["event_name"] == "pull_request" and github["ref_name"] == "7/merge"
    assert github["head_ref"] == "cicd-fix/a" and github["base_ref"] == "main"
    assert github["event"]["number"] == 7 and github["event"]["action"] == "opened"
    assert github["event"]["pull_request"]["head"] == {"ref": "cicd-fix/a", "sha": "h" * 40}
    assert github["token"] == "ghs_x"
    env = info.github_env("/w", "a")
    assert env["GITHUB_REF"] == "refs/pull/7/merge" and env["GITHUB_EVENT_NAME"] == "pull_request"
    assert env["GITHUB_HEAD_REF"] == "cicd-fix/a" and env["GITHUB_BASE_REF"] == "main"
    assert "ghs_x" not in env.values()  # the token is never a variable of its own
    push = _info("push", "refs/heads/main").github_context()
    assert push["head_ref"] == "" and push["event"]["after"] == "h" * 40 and push["token"] == ""


def test_job_tokens_are_random() -> None:
    tokens = {new_job_token() for _ in range(50)}
    assert len(tokens) == 50 and all(t.startswith("ghs_") and len(t) == 40 for t in tokens)

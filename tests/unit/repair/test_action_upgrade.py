from __future__ import annotations

import dataclasses

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.repair.action_upgrade import (
    SUPPORTED_ACTIONS,
    ActionUpgradeFixer,
    upgrade_line,
)

CI = ".github/workflows/ci.yml"

# odd but valid formatting on purpose: quotes, comments, trailing spaces, blank lines
DEPRECATED = """name: ci   # the main workflow
on:
  push:
    branches: [main]

jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v3   # keep this comment
      - uses: "actions/setup-python@v4"
        with: {python-version: '3.12'}
      - run: python -m build
      - name:   Upload
        uses: actions/upload-artifact@v3.1.2
        with:
          name: dist
          path: dist/
  publish:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - uses: 'actions/download-artifact@v3'
      - uses: actions/cache@0c45773b623bea8c8e75f6c82b208c3cf94ea4f9
      - uses: actions/setup-node@v4
      - run: ls dist
"""


def test_the_table_knows_the_common_actions():
    assert SUPPORTED_ACTIONS["actions/upload-artifact"].supported == 4
    assert SUPPORTED_ACTIONS["actions/setup-python"].supported == 5
    assert SUPPORTED_ACTIONS["github/codeql-action"].supported == 3
    line = "      - uses: github/codeql-action/init@v2 # scan\n"
    assert upgrade_line(line, None) == (
        "      - uses: github/codeql-action/init@v3 # scan\n",
        "github/codeql-action v2 -> v3",
    )
    assert upgrade_line("      - uses: actions/checkout@v4\n", None)[1] is None
    assert upgrade_line("      - uses: actions/checkout@main\n", None)[1] is None


def test_named_action_moves_with_its_companion_and_nothing_else_changes(repo, config_failure):
    sha = repo.commit({CI: DEPRECATED, "README.md": "x\n"}, "workflow")
    failure = config_failure(
        recipe="upgrade-action",
        pattern="deprecated-action",
        captures={"action": "actions/upload-artifact", "version": "v3"},
        evidence=["uses a deprecated version of `actions/upload-artifact: v3`"],
    )
    result = ActionUpgradeFixer().propose(repo.workflow_context([failure], sha))
    assert result.applicable and not result.unrepaired
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.files == [CI]
    assert repair.category is FailureCategory.CONFIGURATION and repair.confidence >= 0.9
    expected = DEPRECATED.replace(
        "actions/upload-artifact@v3.1.2", "actions/upload-artifact@v4"
    ).replace("'actions/download-artifact@v3'", "'actions/download-artifact@v4'")
    # byte-for-byte: only the two version strings differ
    assert repo.applied_bytes(sha, repair.patch, CI) == expected.encode()
    assert any("immutable" in note for note in repair.notes)


def test_without_a_named_action_every_deprecated_reference_moves(repo, config_failure):
    other = "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
    other += "      - uses: actions/setup-go@v3\n"
    sha = repo.commit({CI: DEPRECATED, ".github/workflows/go.yaml": other}, "workflows")
    failure = config_failure(recipe="upgrade-action", evidence=["##[error]deprecated action"])
    result = ActionUpgradeFixer().propose(repo.workflow_context([failure], sha))
    repair = result.repairs[0]
    assert sorted(repair.files) == [CI, ".github/workflows/go.yaml"]
    expected = (
        DEPRECATED.replace("checkout@v3", "checkout@v4")
        .replace("setup-python@v4", "setup-python@v5")
        .replace("upload-artifact@v3.1.2", "upload-artifact@v4")
        .replace("download-artifact@v3", "download-artifact@v4")
    )
    assert repo.applied_bytes(sha, repair.patch, CI) == expected.encode()
    assert "actions/cache@0c45773b623bea8c8e75f6c82b208c3cf94ea4f9" in expected  # pinned
    assert b"setup-go@v5" in repo.applied_bytes(sha, repair.patch, ".github/workflows/go.yaml")


def test_the_rewrite_keeps_crlf_and_every_other_byte(tmp_path):
    crlf = DEPRECATED.replace("\n", "\r\n").encode() + b"# trailing comment without newline"
    target = tmp_path / CI
    target.parent.mkdir(parents=True)
    target.write_bytes(crlf)
    moved = ActionUpgradeFixer._upgrade(tmp_path, {"actions/checkout"})
    assert moved == [f"{CI}:10: actions/checkout v3 -> v4"]
    assert target.read_bytes() == crlf.replace(b"checkout@v3", b"checkout@v4")


def test_unknown_action_one_typo_from_a_known_one(repo, config_failure):
    wf = DEPRECATED.replace("actions/setup-python@v4", "actions/setup-pyhton@v5")
    sha = repo.commit({CI: wf}, "typo")
    failure = config_failure(
        recipe="upgrade-action",
        pattern="unknown-action",
        captures={"action": "actions/setup-pyhton", "version": "v5"},
    )
    result = ActionUpgradeFixer().propose(repo.workflow_context([failure], sha))
    repair = result.repairs[0]
    assert repair.confidence == 0.5
    text = repo.applied_bytes(sha, repair.patch, CI).decode()
    assert '"actions/setup-python@v5"' in text and "checkout@v3" in text


def test_unknown_action_without_a_known_version_is_reported(repo, config_failure):
    sha = repo.commit({CI: DEPRECATED.replace("actions/checkout@v3", "acme/deploy@v1")}, "x")
    failure = config_failure(
        recipe="upgrade-action", captures={"action": "acme/deploy", "version": "v1"}
    )
    result = ActionUpgradeFixer().propose(repo.workflow_context([failure], sha))
    assert not result.repairs
    assert "acme/deploy@v1" in result.unrepaired[0] and "by hand" in result.unrepaired[0]


def test_upgrade_ignores_other_categories(repo, config_failure):
    sha = repo.commit({CI: DEPRECATED}, "x")
    failure = dataclasses.replace(
        config_failure(recipe="upgrade-action"), category=FailureCategory.TEST
    )
    assert not ActionUpgradeFixer().propose(repo.workflow_context([failure], sha)).applicable

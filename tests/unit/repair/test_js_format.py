from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Excerpt, Failure
from cicd_orchestrator.repair import js_tools
from cicd_orchestrator.repair.js_format import (
    JsFormatFixer,
    eslint_config,
    prettier_needs,
    read_log,
)
from cicd_orchestrator.repair.js_tools import Declared, declared, folder_of
from cicd_orchestrator.repair.project_tools import ToolInstallError
from cicd_orchestrator.repair.registry import fixers_for_category

PRETTIER = "3.3.3"
ESLINT = "9.17.0"


def write(root: Path, tree: dict[str, str]) -> None:
    for rel, text in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def package(dev: dict[str, str] | None = None, **extra: object) -> str:
    return json.dumps({"name": "web", "private": True, "devDependencies": dev or {}, **extra})


def failure(log: str, pattern: str | None = None, job: str = "lint") -> Failure:
    lines = log.splitlines()
    return Failure(
        job=job,
        job_id=1,
        run_id=1,
        step="Lint",
        category=FailureCategory.QUALITY,
        confidence=0.85,
        signature="s",
        pattern=pattern,
        recipe="none",
        evidence=lines[:3],
        excerpts=[Excerpt(1, len(lines), log)],
    )


# --------------------------------------------------------------------------- versions
LOCK_V3 = {
    "name": "web",
    "lockfileVersion": 3,
    "packages": {
        "": {"devDependencies": {"prettier": "^3.0.0"}},
        "node_modules/prettier": {"version": "3.2.5", "dev": True},
        "node_modules/eslint": {"version": "8.57.0", "dev": True},
    },
}
LOCK_V1 = {"lockfileVersion": 1, "dependencies": {"prettier": {"version": "2.8.8"}}}


@pytest.mark.parametrize(
    ("tree", "tool", "expected"),
    [
        (
            {"package-lock.json": json.dumps(LOCK_V3), "package.json": package({"prettier": "^3"})},
            "prettier",
            Declared("prettier", "3.2.5", "package-lock.json", exact=True),
        ),
        (
            {"package-lock.json": json.dumps({**LOCK_V3, "lockfileVersion": 2})},
            "eslint",
            Declared("eslint", "8.57.0", "package-lock.json", exact=True),
        ),
        (
            {"npm-shrinkwrap.json": json.dumps(LOCK_V1)},
            "prettier",
            Declared("prettier", "2.8.8", "npm-shrinkwrap.json", exact=True),
        ),
        (
            {"package.json": package({"prettier": "3.1.0"})},
            "prettier",
            Declared("prettier", "3.1.0", "package.json", exact=True),
        ),
        (
            {"package.json": package(dependencies={"eslint": "=8.56.0"})},
            "eslint",
            Declared("eslint", "8.56.0", "package.json", exact=True),
        ),
        (
            {"package.json": package({"prettier": "^3.1.0"})},
            "prettier",
            Declared("prettier", "^3.1.0", "package.json", exact=False),
        ),
        (
            # the lock file holds another package: the range of package.json is used
            {"package-lock.json": json.dumps(LOCK_V1), "package.json": package({"eslint": "~8.5"})},
            "eslint",
            Declared("eslint", "~8.5", "package.json", exact=False),
        ),
        ({"package.json": package({"prettier": "github:prettier/prettier"})}, "prettier", None),
        ({"package.json": package({"prettier": "workspace:*"})}, "prettier", None),
        ({"package.json": package({"typescript": "5.4.0"})}, "prettier", None),
        ({"package.json": "{not json", "package-lock.json": "[]"}, "prettier", None),
        ({}, "eslint", None),
    ],
)
def test_the_version_the_project_uses(tmp_path, tree, tool, expected):
    write(tmp_path, tree)
    assert declared(tmp_path, tool) == expected


def test_install_folders_keep_versions_and_ranges_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("CICD_CACHE_DIR", str(tmp_path))
    assert folder_of("prettier", "3.1.0") == tmp_path / "tools" / "npm" / "prettier-3.1.0"
    caret, tilde = folder_of("prettier", "^3.1.0"), folder_of("prettier", "~3.1.0")
    assert caret != tilde and caret.parent == tilde.parent == tmp_path / "tools" / "npm"
    assert all(c.isalnum() or c in "-_." for c in caret.name + tilde.name)


def test_a_spec_that_is_not_a_version_is_refused_before_npm_runs():
    with pytest.raises(ToolInstallError):
        js_tools.install("prettier", "3.0.0 && touch /tmp/x")
    with pytest.raises(ToolInstallError):
        js_tools.install("left-pad", "1.0.0")


# --------------------------------------------------------------------------- the log
PRETTIER_3_LOG = """\
> web@1.0.0 format:check
> prettier --check .

Checking formatting...
[warn] src/app.js
[warn] src/components/Button.tsx
[warn] Code style issues found in 2 files. Run Prettier with --write to fix.
Error: Process completed with exit code 1.
"""
PRETTIER_2_LOG = """\
Checking formatting...
[warn] /home/runner/work/web/web/src/app.js
[warn] Code style issues found in the above file(s). Forgot to run Prettier?
"""
ESLINT_LOG = """\
/home/runner/work/web/web/src/app.js
  1:1   error  Unexpected var, use let or const instead  no-var
  3:7   error  'unused' is assigned a value but never used  no-unused-vars

/home/runner/work/web/web/src/util.js
  2:11  warning  Missing semicolon  semi

✖ 3 problems (2 errors, 1 warning)
  1 error and 1 warning potentially fixable with the `--fix` option.
"""
ESLINT_UNFIXABLE_LOG = """\
/home/runner/work/web/web/src/app.js
  3:7  error  'unused' is assigned a value but never used  no-unused-vars

✖ 1 problem (1 error, 0 warnings)
"""
ESLINT_PRETTIER_LOG = """\
/home/runner/work/web/web/src/app.js
  2:10  error  Replace `(a,b)` with `(a,·b)`  prettier/prettier
  4:1   error  Insert `;`                     prettier/prettier

✖ 2 problems (2 errors, 0 warnings)
  2 errors and 0 warnings potentially fixable with the `--fix` option.
"""
ESLINT_UNIX_LOG = """\
src/app.js:1:1: Unexpected var, use let or const instead. [Error/no-var]
src/lib.js:2:3: Insert `;` [Error/prettier/prettier]

2 problems
"""


def test_prettier_3_check_output():
    seen = read_log(PRETTIER_3_LOG.splitlines())
    assert seen.prettier and not seen.eslint
    assert seen.prettier_files == ["src/app.js", "src/components/Button.tsx"]


def test_prettier_2_check_output_with_runner_paths():
    seen = read_log(PRETTIER_2_LOG.splitlines())
    assert seen.prettier and seen.prettier_files == ["/home/runner/work/web/web/src/app.js"]


def test_warn_lines_of_another_tool_are_not_prettier():
    seen = read_log(["[warn] config.yml", "[warn] deprecated.js", "Done in 2s"])
    assert not seen.any and seen.prettier_files == []


def test_eslint_fixable_problems():
    seen = read_log(ESLINT_LOG.splitlines())
    assert seen.eslint and seen.eslint_fixable and not seen.prettier
    assert seen.eslint_files == [
        "/home/runner/work/web/web/src/app.js",
        "/home/runner/work/web/web/src/util.js",
    ]
    assert seen.eslint_prettier_files == []


def test_eslint_problems_without_a_fix():
    seen = read_log(ESLINT_UNFIXABLE_LOG.splitlines())
    assert seen.eslint and seen.eslint_fixable is False


def test_eslint_prettier_rule_problems_are_prettier_work():
    seen = read_log(ESLINT_PRETTIER_LOG.splitlines())
    assert seen.eslint_prettier_files == ["/home/runner/work/web/web/src/app.js"]
    assert seen.eslint_files == []
    unix = read_log(ESLINT_UNIX_LOG.splitlines(), pattern="eslint-error")
    assert unix.eslint and unix.eslint_fixable is None
    assert unix.eslint_files == ["src/app.js"] and unix.eslint_prettier_files == ["src/lib.js"]


def test_the_fixer_takes_only_failures_showing_the_tools():
    fixer = JsFormatFixer()
    mine = [failure(PRETTIER_3_LOG), failure(ESLINT_LOG), failure("x", pattern="prettier-check")]
    other = failure("FAILED tests/test_a.py::test_x - assert 1 == 2")
    assert fixer.relevant([*mine, other]) == mine
    assert "js-format" in [f.name for f in fixers_for_category(FailureCategory.QUALITY)]


# --------------------------------------------------------------------------- configurations
FLAT_PLAIN = """import js from "@eslint/js";
import { readFileSync } from "node:fs";
export default [js.configs.recommended, { rules: { "no-var": "error" } }];
"""
FLAT_PLUGINS = """import js from '@eslint/js';
import react from 'eslint-plugin-react';
const ts = require("typescript-eslint");
export default [js.configs.recommended, react.configs.flat.recommended];
"""


@pytest.mark.parametrize(
    ("tree", "legacy", "needs"),
    [
        ({"eslint.config.mjs": FLAT_PLAIN}, False, ()),
        ({"eslint.config.js": FLAT_PLUGINS}, False, ("eslint-plugin-react", "typescript-eslint")),
        ({"eslint.config.ts": "export default [];"}, False, ("jiti",)),
        ({".eslintrc.json": '{"extends": "eslint:recommended", "rules": {}}'}, True, ()),
        (
            {".eslintrc.yml": "extends: [eslint:recommended, prettier]\nplugins: [import]\n"},
            True,
            ("import", "prettier"),
        ),
        (
            {
                ".eslintrc.js": "module.exports = {extends: ['eslint:recommended'], "
                "overrides: [], parser: '@typescript-eslint/parser'};"
            },
            True,
            ("@typescript-eslint/parser",),
        ),
        (
            {"package.json": package(eslintConfig={"overrides": [{"plugins": ["jest"]}]})},
            True,
            ("jest",),
        ),
    ],
)
def test_what_the_eslint_configuration_needs(tmp_path, tree, legacy, needs):
    write(tmp_path, tree)
    config = eslint_config(tmp_path)
    assert config is not None and config.legacy is legacy
    assert sorted(config.needs) == sorted(needs)


def test_no_eslint_configuration(tmp_path):
    write(tmp_path, {"package.json": package()})
    assert eslint_config(tmp_path) is None


@pytest.mark.parametrize(
    ("tree", "needs"),
    [
        ({".prettierrc": '{"semi": false}'}, []),
        (
            {".prettierrc.yaml": "plugins: [prettier-plugin-tailwindcss]\n"},
            ["prettier-plugin-tailwindcss"],
        ),
        ({"package.json": package(prettier="@acme/prettier-config")}, ["@acme/prettier-config"]),
        (
            {"prettier.config.mjs": 'export default { plugins: ["prettier-plugin-astro"] };'},
            ["prettier-plugin-astro"],
        ),
        ({".prettierrc.toml": 'semi = false\nplugins = ["x"]\n'}, ["x"]),
        ({}, []),
    ],
)
def test_what_the_prettier_configuration_needs(tmp_path, tree, needs):
    write(tmp_path, tree)
    assert prettier_needs(tmp_path) == needs


# --------------------------------------------------------------------------- the fixer, no npm
def run_fixer(repo, tree, log, pattern=None):
    sha = repo.commit(tree, "web")
    return JsFormatFixer().propose(repo.context([failure(log, pattern)], sha)), sha


def test_a_project_that_does_not_declare_prettier_gets_a_note(repo):
    result, _ = run_fixer(repo, {"package.json": package(), "src/app.js": "x\n"}, PRETTIER_3_LOG)
    assert result.applicable and not result.repairs
    assert any("does not declare prettier" in n for n in result.unrepaired)


def test_a_failed_install_is_a_note(repo, monkeypatch):
    def fail(tool: str, spec: str) -> Path:
        raise ToolInstallError(f"{tool}@{spec} could not be installed: ENOTFOUND")

    monkeypatch.setattr(js_tools, "install", fail)
    tree = {"package.json": package({"prettier": PRETTIER}), "src/app.js": "x\n"}
    result, _ = run_fixer(repo, tree, PRETTIER_3_LOG)
    assert not result.repairs
    assert result.unrepaired == [
        f"prettier {PRETTIER}, as package.json pins it, could not be installed: "
        f"prettier@{PRETTIER} could not be installed: ENOTFOUND"
    ]


def test_eslint_with_plugins_is_not_run(repo, monkeypatch):
    monkeypatch.setattr(js_tools, "install", pytest.fail)  # nothing may be installed
    tree = {
        "package.json": package({"eslint": ESLINT}),
        "eslint.config.js": FLAT_PLUGINS,
        "src/app.js": "var x = 1\n",
    }
    result, _ = run_fixer(repo, tree, ESLINT_LOG)
    assert not result.repairs
    assert result.unrepaired == [
        "eslint --fix needs the project's plugins (eslint-plugin-react, typescript-eslint)"
    ]


def test_eslint_problems_without_a_fix_are_not_run(repo, monkeypatch):
    monkeypatch.setattr(js_tools, "install", pytest.fail)
    tree = {"package.json": package({"eslint": ESLINT}), "src/app.js": "x\n"}
    result, _ = run_fixer(repo, tree, ESLINT_UNFIXABLE_LOG)
    assert result.unrepaired == ["eslint reports no problem that eslint --fix can fix"]


def test_a_repository_with_its_own_prettier_is_left_to_it(repo, monkeypatch):
    monkeypatch.setattr(js_tools, "install", pytest.fail)
    tree = {
        "package.json": package({"prettier": PRETTIER}),
        "node_modules/.bin/prettier": "#!/bin/sh\n",
        "src/app.js": "x\n",
    }
    result, _ = run_fixer(repo, tree, PRETTIER_3_LOG)
    assert result.applicable and not result.repairs and not result.unrepaired


def test_switched_off_prettier_is_not_run(repo, monkeypatch):
    monkeypatch.setattr(js_tools, "install", pytest.fail)
    sha = repo.commit({"package.json": package({"prettier": PRETTIER})}, "web")
    ctx = repo.enable(repo.context([failure(PRETTIER_3_LOG)], sha), "prettier", on=False)
    result = JsFormatFixer().propose(ctx)
    assert result.applicable and not result.repairs and not result.unrepaired


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def npm_registry() -> None:
    """Skips, saying why, when npm cannot reach its registry (probed once)."""
    npm, node = runner_tools.find("npm"), runner_tools.find("node")
    if npm is None or node is None:
        pytest.skip("npm or node is not available")
    try:
        probe = subprocess.run(
            [npm, "view", f"prettier@{PRETTIER}", "version", "--fetch-retries=0"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("the npm registry did not answer within 60 s")
    if probe.returncode != 0 or probe.stdout.strip() != PRETTIER:
        pytest.skip(f"the npm registry is unreachable: {probe.stderr.strip()[-200:]}")


@pytest.fixture(scope="module")
def tool_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def installs(npm_registry, tool_cache, monkeypatch):
    monkeypatch.setenv("CICD_CACHE_DIR", str(tool_cache))
    js_tools.clear_cache()
    yield tool_cache
    js_tools.clear_cache()


UGLY = "const a = {b:1,c:2};\nfunction f( x ){return x}\n"
PRETTY_NO_SEMI = "const a = { b: 1, c: 2 }\nfunction f(x) {\n  return x\n}\n"


@pytest.mark.slow  # a real install from the registry
def test_prettier_formats_the_reported_file_at_the_pinned_version(repo, installs):
    tree = {
        "package.json": package({"prettier": PRETTIER}),
        ".prettierrc": '{"semi": false}\n',
        "src/app.js": UGLY,
        "src/other.js": UGLY,  # not in the log: left alone
        "README.md": "# web\n",
    }
    log = (
        "Checking formatting...\n[warn] src/app.js\n"
        "[warn] Code style issues found in the above file. Run Prettier with --write to fix.\n"
    )
    result, sha = run_fixer(repo, tree, log, pattern="prettier-check")
    assert result.applicable and not result.unrepaired, result.unrepaired
    (repair,) = result.repairs
    assert repair.kind is RepairKind.CHANGE and repair.fixer == "prettier"
    assert repair.files == ["src/app.js"]
    assert f"prettier {PRETTIER}, as package.json pins it" in repair.description
    assert repo.applied_bytes(sha, repair.patch, "src/app.js").decode() == PRETTY_NO_SEMI
    assert repo.applied_bytes(sha, repair.patch, "src/other.js").decode() == UGLY
    assert (installs / "tools" / "npm" / f"prettier-{PRETTIER}" / ".cicd-complete").is_file()


@pytest.mark.slow  # a real install from the registry
def test_eslint_fixes_with_its_own_recommended_rules_and_reports_the_rest(repo, installs):
    tree = {
        "package.json": package({"eslint": ESLINT, "@eslint/js": ESLINT}),
        "eslint.config.mjs": FLAT_PLAIN,
        "src/app.js": "var x = 1;\nfoo(x);\n",
        "src/other.js": "var z = 1;\nexport { z };\n",  # not in the log: left alone
    }
    log = (
        "/home/runner/work/web/web/src/app.js\n"
        "  1:1  error  Unexpected var, use let or const instead  no-var\n"
        "  2:1  error  'foo' is not defined  no-undef\n\n"
        "✖ 2 problems (2 errors, 0 warnings)\n"
        "  1 error and 0 warnings potentially fixable with the `--fix` option.\n"
    )
    result, sha = run_fixer(repo, tree, log)
    (repair,) = result.repairs
    assert repair.fixer == "eslint" and repair.files == ["src/app.js"]
    assert f"eslint {ESLINT}, as package.json pins it" in repair.description
    assert repo.applied_bytes(sha, repair.patch, "src/app.js").decode() == "let x = 1;\nfoo(x);\n"
    assert result.unrepaired == [
        "eslint: no safe fix: src/app.js:2:1 no-undef: 'foo' is not defined."
    ]
    assert repair.confidence == 0.5
    assert "node_modules" not in repair.patch


FAKE_ESLINT = """
const fs = require("fs");
const found = require.resolve("@eslint/js", { paths: [process.cwd()] });
if (process.argv.includes("--fix")) fs.appendFileSync("src/app.js", "// " + !!found + "\\n");
process.exit(1);
"""


def test_the_tool_folder_link_serves_the_configuration_and_is_removed(repo, tmp_path, monkeypatch):
    folder = tmp_path / "eslint"
    write(
        folder,
        {
            "node_modules/eslint/bin/eslint.js": FAKE_ESLINT,
            "node_modules/@eslint/js/package.json": '{"name": "@eslint/js", "main": "i.js"}',
            "node_modules/@eslint/js/i.js": "module.exports = {};",
        },
    )
    monkeypatch.setattr(js_tools, "install", lambda tool, spec: folder)
    tree = {
        "package.json": package({"eslint": ESLINT}),
        "eslint.config.mjs": FLAT_PLAIN,
        "src/app.js": "var x = 1;\n",
    }
    result, sha = run_fixer(repo, tree, ESLINT_LOG)
    (repair,) = result.repairs
    assert repair.files == ["src/app.js"] and "node_modules" not in repair.patch
    assert repo.applied_bytes(sha, repair.patch, "src/app.js").decode() == "var x = 1;\n// true\n"
    assert result.unrepaired and result.unrepaired[0].startswith("eslint still fails")


def test_node_is_shown_to_the_sandbox_only_when_it_is_not_a_system_one(tmp_path):
    assert js_tools.node_readable("/usr/bin/node") == []
    write(tmp_path, {"node/bin/node": ""})
    assert js_tools.node_readable(str(tmp_path / "node" / "bin" / "node")) == [
        str((tmp_path / "node").resolve())
    ]

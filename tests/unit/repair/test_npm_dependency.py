from __future__ import annotations

import json

import pytest

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.patterns import load_library
from cicd_orchestrator.repair.dependency import MissingDependencyFixer
from cicd_orchestrator.repair.npm_dependency import (
    NpmDependencyFixer,
    PackageJsonError,
    add_dependency,
    package_name,
)
from cicd_orchestrator.repair.registry import fixers_for_category

PACKAGE = """{
  "name": "web",
  "version": "1.2.0",
  "private": true,
  "scripts": {
    "build": "webpack --mode production",
    "test": "jest"
  },
  "dependencies": {
    "express": "^4.19.2",
    "react": "^18.3.1"
  },
  "files": ["dist", "src"]
}
"""
LOCK = {
    "name": "web",
    "version": "1.2.0",
    "lockfileVersion": 3,
    "requires": True,
    "packages": {
        "": {"name": "web", "version": "1.2.0"},
        "node_modules/lodash": {"version": "4.17.21"},
        "node_modules/@acme/ui": {"version": "2.4.0"},
    },
}
REQUIRE_STACK = (
    "node:internal/modules/cjs/loader:1080",
    "Error: Cannot find module 'lodash/fp'",
    "Require stack:",
    "- /home/runner/work/web/web/src/server.js",
)


def _fix(repo, make_failure, tree, module, lines=()):
    sha = repo.commit(tree, "init")
    failure = make_failure(FailureCategory.BUILD, "add-requirement", module=module)
    failure.pattern = "node-module-not-found"
    failure.evidence = list(lines)
    return NpmDependencyFixer().propose(repo.context([failure], sha)), sha


def _text(repo, sha, result, path="package.json"):
    [repair] = result.repairs
    return repo.applied_bytes(sha, repair.patch, path).decode()


def test_deep_import_adds_the_package_with_the_locked_version(repo, make_failure):
    tree = {
        "package.json": PACKAGE,
        "package-lock.json": json.dumps(LOCK, indent=2) + "\n",
        "src/server.js": "const fp = require('lodash/fp');\n",
    }
    result, sha = _fix(repo, make_failure, tree, "lodash/fp", REQUIRE_STACK)
    assert _text(repo, sha, result) == PACKAGE.replace(
        '    "express": "^4.19.2",\n',
        '    "express": "^4.19.2",\n    "lodash": "^4.17.21",\n',
    )
    [repair] = result.repairs
    # the lock cannot be brought up to date offline: left as it is, the command said
    assert repair.files == ["package.json"]
    assert "package-lock.json was left as it is" in repair.description
    assert "run `npm install`" in repair.description


def test_scoped_package_from_an_esm_import(repo, make_failure):
    tree = {
        "package.json": PACKAGE,
        "node_modules/@acme/ui/package.json": '{"name": "@acme/ui", "version": "2.4.0"}\n',
        "src/app.mjs": "import { Button } from '@acme/ui/button';\n",
    }
    line = (
        "Error [ERR_MODULE_NOT_FOUND]: Cannot find package '@acme/ui' imported from "
        "/home/runner/work/web/web/src/app.mjs"
    )
    result, sha = _fix(repo, make_failure, tree, "@acme/ui", [line])
    assert _text(repo, sha, result) == PACKAGE.replace(
        '  "dependencies": {\n', '  "dependencies": {\n    "@acme/ui": "^2.4.0",\n'
    )


def test_test_file_import_goes_to_dev_dependencies(repo, make_failure):
    tree = {"package.json": PACKAGE, "src/__tests__/server.test.js": "require('supertest')\n"}
    lines = [
        "Cannot find module 'supertest' from 'src/__tests__/server.test.js'",
        "Require stack:",
        "- /home/runner/work/web/web/src/__tests__/server.test.js",
    ]
    result, sha = _fix(repo, make_failure, tree, "supertest", lines)
    assert _text(repo, sha, result) == PACKAGE.replace(
        '  "files": ["dist", "src"]\n',
        '  "files": ["dist", "src"],\n  "devDependencies": {\n    "supertest": "*"\n  }\n',
    )


def test_typescript_error_in_a_tab_indented_manifest(repo, make_failure):
    text = '{\n\t"name": "api",\n\t"dependencies": {\n\t\t"fastify": "4.26.2"\n\t}\n}\n'
    tree = {"package.json": text, "src/routes.ts": "import { z } from 'zod';\n"}
    line = (
        "src/routes.ts(1,19): error TS2307: Cannot find module 'zod' or its corresponding "
        "type declarations."
    )
    result, sha = _fix(repo, make_failure, tree, "zod", [line])
    assert _text(repo, sha, result) == text.replace('"4.26.2"\n', '"4.26.2",\n\t\t"zod": "*"\n')


def test_webpack_config_folder_and_nearest_manifest(repo, make_failure):
    app = (
        '{\n    "name": "@web/app",\n'
        '    "devDependencies": {\n        "webpack": "5.91.0"\n    }\n}\n'
    )
    tree = {
        "package.json": '{\n  "name": "monorepo",\n  "workspaces": ["packages/*"]\n}\n',
        "packages/app/package.json": app,
        "packages/app/src/index.js": "import dayjs from 'dayjs';\n",
    }
    line = (
        "Module not found: Error: Can't resolve 'dayjs' in "
        "'/home/runner/work/web/web/packages/app/src'"
    )
    result, sha = _fix(repo, make_failure, tree, "dayjs", [line])
    assert _text(repo, sha, result, "packages/app/package.json") == app.replace(
        '"5.91.0"\n    }\n',
        '"5.91.0"\n    },\n    "dependencies": {\n        "dayjs": "*"\n    }\n',
    )


@pytest.mark.parametrize(
    "spec,name",
    [
        ("lodash", "lodash"),
        ("lodash/fp", "lodash"),
        ("@acme/ui", "@acme/ui"),
        ("@acme/ui/button/index.js", "@acme/ui"),
        ("fs", None),
        ("node:fs", None),
        ("fs/promises", None),
        ("./util", None),
        ("../lib/x.js", None),
        ("/abs/x.js", None),
        ("@/components/Button", None),
        ("~/store", None),
        ("#internal/x", None),
        ("Not A Package", None),
    ],
)
def test_package_names(spec, name):
    assert package_name(spec)[0] == name


@pytest.mark.parametrize(
    "module,reason",
    [
        ("node:fs", "node builtin"),
        ("./helpers", "is a path, not a package"),
        ("@/components/Button", "not a package name"),
    ],
)
def test_what_is_no_package_is_never_added(repo, make_failure, module, reason):
    result, _ = _fix(repo, make_failure, {"package.json": PACKAGE}, module)
    assert not result.repairs and reason in result.unrepaired[0]


def test_own_workspace_package_is_never_added(repo, make_failure):
    tree = {
        "package.json": '{\n  "name": "monorepo",\n  "workspaces": ["packages/*"]\n}\n',
        "packages/app/package.json": '{\n  "name": "@web/app"\n}\n',
        "packages/shared/package.json": '{\n  "name": "@web/shared"\n}\n',
        "packages/app/index.js": "require('@web/shared')\n",
    }
    lines = [
        "Error: Cannot find module '@web/shared'",
        "Require stack:",
        "- /home/runner/work/web/web/packages/app/index.js",
    ]
    result, _ = _fix(repo, make_failure, tree, "@web/shared", lines)
    assert not result.repairs
    assert "a package of the repository itself" in result.unrepaired[0]


def test_declared_package_is_not_added_twice(repo, make_failure):
    result, _ = _fix(repo, make_failure, {"package.json": PACKAGE}, "react-dom/client")
    assert result.repairs  # react-dom is not react
    result, _ = _fix(repo, make_failure, {"package.json": PACKAGE}, "express")
    assert not result.repairs and "already declared in dependencies" in result.unrepaired[0]


def test_a_broken_manifest_gets_a_clear_reason(repo, make_failure):
    result, _ = _fix(repo, make_failure, {"package.json": '{"name": "web",\n'}, "lodash")
    assert not result.repairs
    assert "cannot edit package.json safely: not valid JSON" in result.unrepaired[0]


def test_without_a_manifest_nothing_is_added(repo, make_failure):
    result, _ = _fix(repo, make_failure, {"README.md": "web\n"}, "lodash")
    assert result.unrepaired == ["lodash (import lodash): no package.json was found"]


def test_python_failures_are_not_npm_ones(repo, make_failure):
    sha = repo.commit({"package.json": PACKAGE}, "init")
    failure = make_failure(FailureCategory.BUILD, "add-requirement", module="yaml")
    failure.pattern = "python-module-not-found"
    assert not NpmDependencyFixer().propose(repo.context([failure], sha)).applicable
    failure.pattern = "node-module-not-found"
    failure.captures["module"] = "left-pad"
    assert not MissingDependencyFixer().propose(repo.context([failure], sha)).applicable


def test_the_switch_of_the_recipe_turns_it_off(repo, make_failure):
    sha = repo.commit({"package.json": PACKAGE}, "init")
    failure = make_failure(FailureCategory.BUILD, "add-requirement", module="lodash")
    failure.pattern = "node-module-not-found"
    ctx = repo.enable(repo.context([failure], sha), "add-requirement", on=False)
    assert not NpmDependencyFixer().propose(ctx).repairs


def test_the_build_and_test_categories_run_it():
    for category in (FailureCategory.BUILD, FailureCategory.TEST):
        assert "add-npm-dependency" in [f.name for f in fixers_for_category(category)]


@pytest.mark.parametrize(
    "line,module",
    [
        ("Error: Cannot find module 'left-pad'", "left-pad"),
        ("Module not found: Error: Can't resolve 'dayjs' in '/w/src'", "dayjs"),
        ("Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'zod' imported from /w/a.mjs", "zod"),
        (
            "src/a.ts(1,19): error TS2307: Cannot find module '@acme/ui' or its corresponding "
            "type declarations.",
            "@acme/ui",
        ),
        ("src/a.ts:1:19 - error TS2307: Cannot find module 'zod'.", "zod"),
    ],
)
def test_the_log_library_recognises_each_toolchain(line, module):
    matches = dict(load_library().match_line(line))
    assert [c["module"] for p, c in matches.items() if p.id == "node-module-not-found"] == [module]


def test_package_json_edit_keeps_one_line_objects_and_sorts_in():
    text = '{"name": "x", "dependencies": {"a": "1.0.0", "c": "1.0.0"}}'
    assert add_dependency(text, "dependencies", "b", "1.0.0") == (
        '{"name": "x", "dependencies": {"a": "1.0.0", "b": "1.0.0", "c": "1.0.0"}}'
    )
    unsorted = '{\r\n  "dependencies": {\r\n    "z": "1",\r\n    "a": "1"\r\n  }\r\n}\r\n'
    assert add_dependency(unsorted, "dependencies", "m", "2") == unsorted.replace(
        '"a": "1"\r\n', '"a": "1",\r\n    "m": "2"\r\n'
    )
    with pytest.raises(PackageJsonError):
        add_dependency('["not", "an", "object"]', "dependencies", "a", "1")


def test_a_linked_manifest_is_neither_read_nor_written(repo, make_failure, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text(PACKAGE)
    (repo.path / "package.json").symlink_to(outside)
    result, _ = _fix(repo, make_failure, {"src/a.js": "require('lodash')\n"}, "lodash")
    assert not result.repairs and outside.read_text() == PACKAGE
    assert any("package.json is a symbolic link" in note for note in result.unrepaired)

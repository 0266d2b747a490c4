from __future__ import annotations

import json
import shutil

import pytest

from cicd_orchestrator import runner_tools
from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.models import Context, DependencyChange, Failure
from cicd_orchestrator.repair.pinning import (
    PinDependencyFixer,
    lockfile_named,
    mentioned,
    pin_in_package_json,
    pin_in_pyproject,
    pin_requirement_line,
)


def failure(category=FailureCategory.BUILD, recipe="pin-dependency", evidence=(), **captures):
    return Failure(
        job="build",
        job_id=1,
        run_id=1,
        step="Install",
        category=category,
        confidence=0.8,
        signature="s",
        recipe=recipe,
        evidence=list(evidence),
        captures=captures,
    )


def changes(*items):
    return [DependencyChange(name, before, after) for name, before, after in items]


def make_ctx(repo, failures, sha, dependency_changes=(), changed_files=(), enabled=True):
    context = Context(
        failing_sha=sha,
        last_green_sha="0" * 40,
        changed_files=list(changed_files),
        dependency_changes=list(dependency_changes),
    )
    ctx = repo.context(failures, sha, context=context)
    return repo.enable(ctx, "pin-dependency", on=enabled)


def applied(repo, sha, patch, name):
    return repo.applied_bytes(sha, patch, name).decode()


IMPORT_ERROR = "ImportError: cannot import name 'Retry' from 'requests.adapters'"


# --------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(
    "line,expected",
    [
        ("requests>=2.0", "requests==2.31.0"),
        ("Requests", "Requests==2.31.0"),
        ("requests[socks]~=2.0 ; python_version >= '3.8'  # http", None),
        ("  requests  # pinned later", "  requests==2.31.0  # pinned later"),
        ("requests-toolbelt==1.0", None),
        ("# requests==1", None),
        ("-r base.txt", None),
    ],
)
def test_pin_requirement_line(line, expected):
    out = pin_requirement_line(line, "requests", "2.31.0")
    if line.startswith("requests[socks]"):
        assert out == "requests[socks]==2.31.0 ; python_version >= '3.8'  # http"
    else:
        assert out == expected


def test_mentioned_by_name_module_or_path():
    assert mentioned("requests", failure(evidence=[IMPORT_ERROR]))
    assert mentioned("pyyaml", failure(module="yaml"))
    assert mentioned("typing-extensions", failure(evidence=["No module named typing_extensions"]))
    assert mentioned(
        "urllib3", failure(evidence=['File "/usr/lib/site-packages/urllib3/util.py", line 3'])
    )
    assert not mentioned("requests", failure(evidence=["requests-toolbelt 1.0 is broken"]))
    assert not mentioned("six", failure(evidence=["sixteen tests failed"]))


def test_lockfile_named_from_captures_or_evidence():
    assert lockfile_named(failure(lockfile="/w/app/Cargo.lock")) == (
        "Cargo.lock",
        "/w/app/Cargo.lock",
    )
    npm = failure(
        recipe="none",
        evidence=[
            "npm error `npm ci` can only install packages when your package.json and "
            "package-lock.json or npm-shrinkwrap.json are in sync."
        ],
    )
    assert lockfile_named(npm) == ("package-lock.json", "package-lock.json")
    assert lockfile_named(failure(evidence=[IMPORT_ERROR])) is None


# --------------------------------------------------------------------------- pins
def test_upstream_release_is_pinned_in_the_requirements_file(repo):
    sha = repo.commit(
        {
            "requirements.txt": "flask==3.0.0\nrequests>=2.0 ; python_version >= '3.8'  # http\n",
            "app.py": "import requests\n",
        },
        "init",
    )
    ctx = make_ctx(
        repo,
        [failure(evidence=[IMPORT_ERROR], module="requests.adapters")],
        sha,
        changes(("requests", "2.31.0", "2.32.0"), ("flask", "3.0.0", "3.0.0")),
    )
    result = PinDependencyFixer().propose(ctx)
    assert result.applicable and not result.unrepaired
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.files == ["requirements.txt"]
    text = applied(repo, sha, repair.patch, "requirements.txt")
    assert text == "flask==3.0.0\nrequests==2.31.0 ; python_version >= '3.8'  # http\n"
    message = repair.commit_message
    assert "requests" in message and "2.31.0" in message and "2.32.0" in message
    assert "temporar" in message.lower()
    assert "temporary pin: requests==2.31.0" in repair.notes


def test_changed_dependency_named_by_a_test_failure_is_pinned_without_the_recipe(repo):
    sha = repo.commit({"requirements-dev.txt": "pytest\nurllib3\n"}, "init")
    test_failure = failure(
        FailureCategory.TEST,
        recipe="revert-culprit",
        evidence=["E   AttributeError: module 'urllib3' has no attribute 'HTTPResponse'"],
    )
    deps = changes(("urllib3", "1.26.18", "2.0.0"))
    result = PinDependencyFixer().propose(make_ctx(repo, [test_failure], sha, deps))
    assert "+urllib3==1.26.18" in result.repairs[0].patch
    # the same failure without a matching dependency change is not this fixer's
    other = PinDependencyFixer().propose(
        make_ctx(repo, [test_failure], sha, changes(("idna", "3.6", "3.7")))
    )
    assert not other.applicable and not other.repairs


def test_single_upstream_change_is_pinned_for_the_recipe_with_lower_confidence(repo):
    sha = repo.commit({"requirements.txt": "numpy\npandas\n"}, "init")
    f = failure(evidence=["ResolutionImpossible: for help visit https://pip.pypa.io"])
    deps = changes(("pandas", "2.1.4", "2.2.0"), ("tzdata", None, "2024.1"))
    repair = PinDependencyFixer().propose(make_ctx(repo, [f], sha, deps)).repairs[0]
    assert "+pandas==2.1.4" in repair.patch and repair.confidence < 0.7


def test_nothing_to_pin_is_reported(repo):
    sha = repo.commit({"requirements.txt": "numpy\n"}, "init")
    f = failure(evidence=["ResolutionImpossible"])
    deps = changes(("a", "1", "2"), ("b", "1", "2"))
    result = PinDependencyFixer().propose(make_ctx(repo, [f], sha, deps))
    assert not result.repairs and "nothing to pin" in result.unrepaired[0]
    result = PinDependencyFixer().propose(make_ctx(repo, [f], sha, ()))
    assert "no dependency versions were compared" in result.unrepaired[0]


def test_transitive_dependency_is_reported_not_guessed(repo):
    sha = repo.commit({"requirements.txt": "requests==2.31.0\n"}, "init")
    f = failure(evidence=["ImportError: cannot import name 'x' from 'charset_normalizer'"])
    result = PinDependencyFixer().propose(
        make_ctx(repo, [f], sha, changes(("charset-normalizer", "3.3.2", "4.0.0")))
    )
    assert not result.repairs
    assert "charset-normalizer changed from 3.3.2 to 4.0.0" in result.unrepaired[0]
    assert "transitive" in result.unrepaired[0]


def test_disabled_fixer_proposes_nothing(repo):
    sha = repo.commit({"requirements.txt": "requests\n"}, "init")
    ctx = make_ctx(
        repo,
        [failure(evidence=[IMPORT_ERROR])],
        sha,
        changes(("requests", "2.31.0", "2.32.0")),
        enabled=False,
    )
    result = PinDependencyFixer().propose(ctx)
    assert result.applicable and not result.repairs


PYPROJECT = """# build configuration
[build-system]
requires = ["setuptools>=68"]   # keep
build-backend = "setuptools.build_meta"

[project]
name = "shop"
version = "1.0"
dependencies = [
    # web
    "flask>=3",
    'requests[socks] >= 2.0; python_version >= "3.9"',  # http client
    "rich",
]

[project.optional-dependencies]
dev = ["requests>=2", "pytest"]

[tool.ruff]
line-length   =   100
"""


def test_pyproject_entry_is_pinned_and_the_rest_is_byte_identical(repo):
    sha = repo.commit({"pyproject.toml": PYPROJECT}, "init")
    ctx = make_ctx(
        repo, [failure(evidence=[IMPORT_ERROR])], sha, changes(("requests", "2.31.0", "2.32.0"))
    )
    repair = PinDependencyFixer().propose(ctx).repairs[0]
    assert repair.files == ["pyproject.toml"]
    expected = PYPROJECT.replace(
        """'requests[socks] >= 2.0; python_version >= "3.9"'""",
        """'requests[socks]==2.31.0; python_version >= "3.9"'""",
    )
    assert applied(repo, sha, repair.patch, "pyproject.toml") == expected
    assert pin_in_pyproject(expected, "requests", "2.31.0") is None  # already pinned
    assert pin_in_pyproject('[tool.x]\ndependencies = ["requests"]\n', "requests", "1") is None


PACKAGE_JSON = """{
    "name":  "shop",
    "version": "1.0.0",
    "scripts": {"test": "jest", "dependencies": "echo"},
    "dependencies": {
        "express": "^4.18.0",
        "left-pad": "~1.3.0"
    },
    "devDependencies": {"jest": "^29.0.0",   "left-pad-extra": "1.0.0"}
}
"""


def test_package_json_gets_an_exact_version_and_the_rest_is_byte_identical(repo):
    sha = repo.commit({"package.json": PACKAGE_JSON}, "init")
    f = failure(evidence=["TypeError: leftPad is not a function", "    at left-pad/index.js:3"])
    repair = (
        PinDependencyFixer()
        .propose(make_ctx(repo, [f], sha, changes(("left-pad", "1.3.0", "1.3.1"))))
        .repairs[0]
    )
    text = applied(repo, sha, repair.patch, "package.json")
    assert text == PACKAGE_JSON.replace('"left-pad": "~1.3.0"', '"left-pad": "1.3.0"')
    assert json.loads(text)["dependencies"]["left-pad"] == "1.3.0"
    # dev dependencies too; the same version is not an edit
    dev = pin_in_package_json(PACKAGE_JSON, "jest", "29.6.0")
    assert dev == PACKAGE_JSON.replace('"jest": "^29.0.0"', '"jest": "29.6.0"')
    assert pin_in_package_json(text, "left-pad", "1.3.0") is None


# --------------------------------------------------------------------------- lock files
def test_missing_lock_tool_is_reported(repo, tmp_path, monkeypatch):
    sha = repo.commit(
        {"pyproject.toml": '[project]\nname = "x"\n', "poetry.lock": "# old\n"}, "init"
    )
    f = failure(
        evidence=[
            "pyproject.toml changed significantly since poetry.lock was last generated. "
            "Run `poetry lock [--no-update]` to fix the lock file."
        ],
    )
    only_git = tmp_path / "bin"  # a PATH with git (for the workspace) and no poetry
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(only_git))
    result = PinDependencyFixer().propose(make_ctx(repo, [f], sha))
    assert result.applicable and not result.repairs
    assert result.unrepaired == [
        "build: poetry.lock was not regenerated: poetry is not installed in the runner tool "
        "folder or the system"
    ]


def test_lock_file_without_its_manifest_is_reported(repo):
    sha = repo.commit({"README.md": "x\n"}, "init")
    result = PinDependencyFixer().propose(make_ctx(repo, [failure(lockfile="uv.lock")], sha))
    assert "no uv.lock beside a pyproject.toml" in result.unrepaired[0]


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_lock_file_is_regenerated_offline(repo):
    package = '{\n  "name": "shop",\n  "version": "1.1.0",\n  "private": true\n}\n'
    stale = {
        "name": "shop",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": "shop", "version": "1.0.0"}},
    }
    sha = repo.commit(
        {"web/package.json": package, "web/package-lock.json": json.dumps(stale, indent=2)},
        "bump",
    )
    f = failure(
        recipe="pin-dependency",
        lockfile="package-lock.json",
        evidence=["npm error `npm ci` can only install packages when ... are in sync."],
    )
    result = PinDependencyFixer().propose(make_ctx(repo, [f], sha, changed_files=["web/x"]))
    assert not result.unrepaired, result.unrepaired
    repair = result.repairs[0]
    assert repair.files == ["web/package-lock.json"]
    assert "Regenerate web/package-lock.json" in repair.commit_message
    lock = json.loads(applied(repo, sha, repair.patch, "web/package-lock.json"))
    assert lock["version"] == "1.1.0"


@pytest.mark.skipif(
    runner_tools.find("cargo") is None,
    reason="cargo is not installed where repository commands see it (the runner tool folder "
    "or the system's directories)",
)
def test_cargo_lock_is_regenerated_offline(repo):
    sha = repo.commit(
        {
            "Cargo.toml": '[package]\nname = "app"\nversion = "0.2.0"\nedition = "2021"\n',
            "src/main.rs": "fn main() {}\n",
            "Cargo.lock": 'version = 4\n\n[[package]]\nname = "app"\nversion = "0.1.0"\n',
        },
        "bump",
    )
    f = failure(
        evidence=[
            "error: the lock file /home/runner/work/app/Cargo.lock needs to be updated but "
            "--locked was passed to prevent this"
        ]
    )
    result = PinDependencyFixer().propose(make_ctx(repo, [f], sha))
    if result.unrepaired and "failed" in result.unrepaired[0]:
        pytest.skip(f"cargo cannot run here: {result.unrepaired[0]}")
    assert result.repairs[0].files == ["Cargo.lock"]
    assert 'version = "0.2.0"' in applied(repo, sha, result.repairs[0].patch, "Cargo.lock")

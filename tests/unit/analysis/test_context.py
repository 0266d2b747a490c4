from __future__ import annotations

import subprocess
from pathlib import Path

from cicd_orchestrator.analysis.context import (
    build_context,
    dependency_changes,
    dependency_versions,
    is_manifest,
)


def _git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "Dev",
        "GIT_AUTHOR_EMAIL": "d@x",
        "GIT_COMMITTER_NAME": "Dev",
        "GIT_COMMITTER_EMAIL": "d@x",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def test_build_context(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    green = _commit(repo, {"src/a.py": "x = 1\n", "requirements.txt": "requests\n"}, "initial")
    _commit(repo, {"src/b.py": "import yaml\n"}, "add b")
    failing = _commit(
        repo, {"requirements.txt": "requests\nrich\n", "package.json": "{}\n"}, "deps"
    )
    green_log = "Successfully installed requests-2.31.0 idna-3.6\nCollecting six==1.16.0\n"
    fail_log = "2024-05-01T10:00:00Z Successfully installed requests-2.32.0 idna-3.6 rich-13.0.0\n"
    ctx = build_context(repo, green, failing, green_log, fail_log)
    assert [c.message for c in ctx.commits] == ["add b", "deps"]
    assert ctx.commits[1].files == ["package.json", "requirements.txt"]
    assert ctx.changed_files == ["src/b.py", "package.json", "requirements.txt"]
    assert ctx.changed_manifests == ["package.json", "requirements.txt"]
    changes = {c.name: (c.before, c.after) for c in ctx.dependency_changes}
    assert changes == {
        "requests": ("2.31.0", "2.32.0"),
        "rich": (None, "13.0.0"),
        "six": ("1.16.0", None),
    }
    assert ctx.notes == []


def test_context_without_green_sha(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, {"a.txt": "1"}, "one")
    head = _commit(repo, {"b.txt": "2"}, "two")
    ctx = build_context(repo, None, head)
    assert [c.message for c in ctx.commits] == ["two"]
    assert any("no last green run" in n for n in ctx.notes)


def test_context_on_a_missing_repository(tmp_path: Path) -> None:
    ctx = build_context(tmp_path / "nope", "a" * 40, "b" * 40)
    assert ctx.commits == [] and any("unavailable" in n for n in ctx.notes)


def test_dependency_version_parsers() -> None:
    text = "\n".join(
        [
            "added lodash@4.17.21",
            "go: downloading github.com/pkg/errors v0.9.1",
            "   Compiling serde v1.0.197",
            "Downloaded from central: https://repo/org/acme/lib/2.0/lib-2.0.jar",
            "Requirement already satisfied: PyYAML in ./venv/lib/python3.11/site-packages (6.0.1)",
        ]
    )
    found = dependency_versions(text)
    assert found["lodash"] == "4.17.21" and found["github.com/pkg/errors"] == "v0.9.1"
    assert found["serde"] == "1.0.197" and found["lib"] == "2.0" and found["pyyaml"] == "6.0.1"
    assert dependency_changes(None, text) == []


def test_is_manifest() -> None:
    for name in (
        "requirements-dev.txt",
        "a/pyproject.toml",
        "go.sum",
        "build.gradle.kts",
        "Cargo.lock",
        "pnpm-lock.yaml",
    ):
        assert is_manifest(name), name
    assert not is_manifest("src/requirements.py")

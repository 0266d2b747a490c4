"""What an LLM patch may change: the rules every patch a model proposes must pass.

The model reads log text that whoever pushed the failing commit controls, so its answer is
treated as hostile too. A patch is refused, with the reason, when it

- is larger than the configured cap (``llm_patch_max_lines`` changed lines,
  ``llm_patch_max_bytes`` bytes), checked on the model's answer and on the applied change;
- touches a path that is not plain source, test or documentation:

  - a dotfile or anything in a dot-folder (``.github/`` with its workflows and
    CODEOWNERS, ``.gitlab-ci.yml``, ``.circleci/``, ``.gitattributes``, ``.env``...);
  - CI configuration by name (``Jenkinsfile*``, ``azure-pipelines*.yml``,
    ``bitbucket-pipelines.yml``, ``appveyor.yml``, ``cloudbuild.yaml``...);
  - ``CODEOWNERS`` wherever it is;
  - a build or dependency file, as a whole (``setup.py``, ``setup.cfg``, ``pyproject.toml``,
    ``package.json``, ``Makefile``, ``Dockerfile``, requirement and lock files, Gradle,
    Maven, Cargo, CMake...): they decide what runs at build and install time, and the
    deterministic fixers already declare and pin dependencies;
  - a script (``*.sh``, ``*.bash``, ``*.ps1``, ``*.bat``, ``*.cmd``, ``*.mk``...);

- deletes a file (a rename counts as one), or makes a symbolic link, a submodule or an
  executable file.

A patch that passes is still only a proposal: it is validated like any other repair, and its
pull request is opened as a draft (``Repair.draft``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from cicd_orchestrator.git import FileChange

CI_NAMES = frozenset(
    {
        "appveyor.yml",
        "appveyor.yaml",
        "bitbucket-pipelines.yml",
        "bitrise.yml",
        "buildkite.yml",
        "buildspec.yml",
        "buildspec.yaml",
        "cloudbuild.yml",
        "cloudbuild.yaml",
        "codemagic.yaml",
        "wercker.yml",
    }
)
CI_PREFIXES = ("jenkinsfile", "azure-pipelines")
BUILD_NAMES = frozenset(
    {
        "setup.py",
        "setup.cfg",
        "pyproject.toml",
        "manifest.in",
        "tox.ini",
        "noxfile.py",
        "pipfile",
        "pipfile.lock",
        "poetry.lock",
        "pdm.lock",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "pnpm-workspace.yaml",
        "makefile",
        "gnumakefile",
        "justfile",
        "taskfile.yml",
        "taskfile.yaml",
        "containerfile",
        "docker-compose.yml",
        "docker-compose.yaml",
        "compose.yml",
        "compose.yaml",
        "cargo.toml",
        "cargo.lock",
        "build.rs",
        "go.mod",
        "go.sum",
        "gemfile",
        "gemfile.lock",
        "rakefile",
        "pom.xml",
        "build.xml",
        "build.gradle",
        "settings.gradle",
        "build.gradle.kts",
        "settings.gradle.kts",
        "gradlew",
        "mvnw",
        "build.sbt",
        "cmakelists.txt",
        "meson.build",
        "configure",
        "configure.ac",
        "composer.json",
        "composer.lock",
        "conanfile.py",
    }
)
BUILD_PREFIXES = ("dockerfile", "requirements", "constraints")
SCRIPT_SUFFIXES = frozenset(
    {
        ".sh",
        ".bash",
        ".zsh",
        ".ksh",
        ".ps1",
        ".psm1",
        ".bat",
        ".cmd",
        ".mk",
        ".cmake",
        ".gradle",
        ".gemspec",
        ".csproj",
        ".vbproj",
        ".fsproj",
        ".vcxproj",
        ".props",
        ".targets",
        ".dockerfile",
    }
)
_MODES = {"120000": "a symbolic link", "160000": "a submodule", "100755": "an executable file"}
_CHANGED_LINE = re.compile(r"^[+-](?![+-]{2} )", re.M)


@dataclass(frozen=True)
class Limits:
    """The largest LLM patch accepted."""

    max_lines: int
    max_bytes: int


def path_refusal(path: str) -> str | None:
    """Why an LLM patch may not change ``path`` (None when it may)."""
    parts = PurePosixPath(path).parts
    name = parts[-1].lower() if parts else ""
    if any(p.startswith(".") for p in parts):
        return "a dotfile or a file in a dot-folder (such as .github/: workflows, CODEOWNERS)"
    if name == "codeowners":
        return "CODEOWNERS"
    if name in CI_NAMES or name.startswith(CI_PREFIXES):
        return "CI configuration"
    if name in BUILD_NAMES or name.startswith(BUILD_PREFIXES):
        return "a build or dependency file"
    if PurePosixPath(name).suffix in SCRIPT_SUFFIXES:
        return "a build script"
    return None


def change_refusal(change: FileChange) -> str | None:
    """Why an LLM patch may not make ``change`` (None when it may)."""
    what = path_refusal(change.path)
    if what is not None:
        return f"{change.path}: {what}"
    if change.status == "D":
        return f"{change.path}: deleted (an LLM patch never deletes or renames a file)"
    if change.new_mode in _MODES and change.new_mode != change.old_mode:
        return f"{change.path}: made {_MODES[change.new_mode]}"
    return None


def size_refusal(patch: str, limits: Limits) -> str | None:
    """Why ``patch`` is too large (None when it is within ``limits``)."""
    size = len(patch.encode("utf-8", errors="surrogateescape"))
    lines = len(_CHANGED_LINE.findall(patch))
    if lines > limits.max_lines:
        return f"{lines} changed lines (at most {limits.max_lines})"
    if size > limits.max_bytes:
        return f"{size} bytes (at most {limits.max_bytes})"
    return None


def refusals(changes: Iterable[FileChange], patch: str, limits: Limits) -> list[str]:
    """Every reason the applied change (its files and its diff) is refused."""
    found = [r for r in (change_refusal(c) for c in changes) if r is not None]
    too_large = size_refusal(patch, limits)
    return found + ([f"the change is too large: {too_large}"] if too_large else [])

"""The setup actions done for real: a job's own virtual environment, tools on PATH."""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cicd_orchestrator import runner_tools
from cicd_orchestrator.actions import toolchains
from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.constants import Conclusion

RunFn = Callable[..., list[JobExecution]]
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z ")


def lines_of(job: JobExecution) -> list[str]:
    return [STAMP.sub("", line) for line in job.read_log().splitlines()]


def by_name(executions: list[JobExecution]) -> dict[str, JobExecution]:
    return {e.name: e for e in executions}


@pytest.fixture(autouse=True)
def _fresh_toolchains(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.delenv(toolchains.ENV_VAR, raising=False)
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "no-uv"))
    monkeypatch.delenv("CICD_JOB_ENV", raising=False)
    monkeypatch.delenv("CICD_JOB_READ_ONLY", raising=False)
    toolchains.clear_cache()
    yield
    toolchains.clear_cache()


def host_python() -> str:
    """A major.minor the machine surely has (the system python's)."""
    found = toolchains.candidates("python")
    if not found:
        pytest.skip("no CPython found on this machine")
    return ".".join(str(n) for n in found[0].version[:2])


def build_wheel(folder: Path, name: str = "tinypkg", version: str = "1.0") -> Path:
    """A pure-python wheel of a one-module package, written from a package folder."""
    src = folder / "src" / name
    src.mkdir(parents=True)
    (src / "__init__.py").write_text(f"VALUE = 'hello from {name}'\n")
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": (src / "__init__.py").read_bytes(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / "wheels" / f"{name}-{version}-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel.parent


def test_setup_python_makes_the_jobs_own_environment(run_workflow: RunFn, tmp_path: Path) -> None:
    version = host_python()
    wheels = build_wheel(tmp_path / "pkg")
    wf = f"""
    on: push
    jobs:
      build:
        outputs:
          py: ${{{{ steps.py.outputs.python-version }}}}
        steps:
          - id: py
            uses: actions/setup-python@v5
            with:
              python-version: "{version}"
          - run: |
              set -x
              test "$(command -v python)" = "$pythonLocation/bin/python"
              test "$(command -v pip)" = "$pythonLocation/bin/pip"
              test "${{{{ steps.py.outputs.python-path }}}}" = "$pythonLocation/bin/python"
              test "$Python_ROOT_DIR" = "$pythonLocation"
              case "$pythonLocation" in "${{{{ runner.tool_cache }}}}"/*) ;; *) exit 9;; esac
              python -c "import sys; assert sys.prefix == '$pythonLocation', sys.prefix"
              pip install --no-index --find-links {wheels} tinypkg
              python -c "import tinypkg, sys; print(tinypkg.VALUE, tinypkg.__file__)"
              python -c "import tinypkg; assert tinypkg.__file__.startswith('$pythonLocation')"
      after:
        needs: build
        steps:
          - run: |
              py="${{{{ needs.build.outputs.py }}}}"
              test "${{py%.*}}" = "{version}"
    """
    runner = JobRunner(job_read_only=[str(wheels)])
    jobs = by_name(run_workflow(wf, runner=runner))
    build = jobs["build"]
    text = "\n".join(lines_of(build))
    assert build.conclusion is Conclusion.SUCCESS, text
    assert jobs["after"].conclusion is Conclusion.SUCCESS, jobs["after"].read_log()
    assert build.outputs["py"].startswith(version + ".")
    assert f"Successfully set up CPython ({build.outputs['py']})" in text
    assert "hello from tinypkg" in text
    assert "##[warning]" not in text
    # nothing landed in the runner tool folder nor in the orchestrator's environment
    for env in (runner_tools.folder(), Path(sys.prefix)):
        if env is not None:
            assert not list(env.glob("lib/python3*/site-packages/tinypkg")), env


def test_the_job_s_environment_sees_the_runner_s_tools_below_its_own(
    run_workflow: RunFn, tmp_path: Path
) -> None:
    tools = runner_tools.folder()
    if tools is None or not runner_tools.has_module("yaml"):
        pytest.skip("no runner tool folder with PyYAML (make runner-tools)")
    version = next(
        (p.name.removeprefix("python") for p in tools.glob("lib/python3*")), host_python()
    )
    wheels = build_wheel(tmp_path / "pkg", name="yaml", version="99.0")
    wf = f"""
    on: push
    jobs:
      build:
        steps:
          - uses: actions/setup-python@v5
            with:
              python-version: "{version}"
          - run: |
              python -c "import yaml, sys; assert yaml.__file__.startswith('{tools}'), yaml"
              python -m pytest --version
              pip install --no-index --find-links {wheels} yaml==99.0
              python -c "import yaml; assert yaml.__file__.startswith('$pythonLocation'), yaml"
    """
    jobs = by_name(run_workflow(wf, runner=JobRunner(job_read_only=[str(wheels)])))
    build = jobs["build"]
    assert build.conclusion is Conclusion.SUCCESS, build.read_log()
    assert (tools / "lib" / f"python{version}" / "site-packages" / "yaml").is_dir()


def test_a_version_not_installed_takes_the_nearest_with_a_warning(run_workflow: RunFn) -> None:
    host_python()
    wf = """
    on: push
    jobs:
      build:
        steps:
          - id: py
            uses: actions/setup-python@v5
            with:
              python-version: "3.99"
          - run: |
              python -c "import sys; print('running', sys.version_info[:2])"
              test "$(command -v python)" = "$pythonLocation/bin/python"
    """
    (job,) = run_workflow(wf)
    lines = lines_of(job)
    assert job.conclusion is Conclusion.SUCCESS, "\n".join(lines)
    warnings = [ln for ln in lines if ln.startswith("##[warning]")]
    assert len(warnings) == 1 and "python 3.99 was asked for" in warnings[0]
    assert "nearest installed version" in warnings[0]
    assert any(ln.startswith("Successfully set up CPython (3.") for ln in lines)


def test_pypy_or_another_major_fails_the_step(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      pypy:
        steps:
          - uses: actions/setup-python@v5
            with:
              python-version: pypy3.10
          - run: echo never
      two:
        steps:
          - uses: actions/setup-python@v5
            continue-on-error: true
            with:
              python-version: "2.7"
          - run: echo still running
    """
    jobs = by_name(run_workflow(wf))
    pypy, two = jobs["pypy"], jobs["two"]
    text = "\n".join(lines_of(pypy))
    assert pypy.conclusion is Conclusion.FAILURE
    assert "##[error]The version 'pypy3.10' with architecture 'x64' was not found" in text
    assert "never" not in text.split("##[error]")[-1]
    assert two.conclusion is Conclusion.SUCCESS and "still running" in two.read_log()


def test_python_version_file(run_workflow: RunFn) -> None:
    version = host_python()
    wf = """
    on: push
    jobs:
      build:
        steps:
          - uses: actions/setup-python@v5
            with:
              python-version-file: .python-version
          - run: python -c "import sys; print('minor', sys.version_info[1])"
      missing:
        steps:
          - uses: actions/setup-python@v5
            with:
              python-version-file: nowhere/.python-version
    """
    jobs = by_name(run_workflow(wf, {".python-version": f"{version}\n"}))
    assert jobs["build"].conclusion is Conclusion.SUCCESS, jobs["build"].read_log()
    assert f"minor {version.split('.')[1]}" in jobs["build"].read_log()
    assert jobs["missing"].conclusion is Conclusion.FAILURE
    assert "version file nowhere/.python-version cannot be read" in jobs["missing"].read_log()


def test_setup_node_and_java_use_the_installed_tools(run_workflow: RunFn) -> None:
    node = toolchains.candidates("node")
    java = toolchains.candidates("java")
    if not node or not java:
        pytest.skip("node or java is not installed on this machine")
    n, j = node[0].version, java[0].version
    wf = f"""
    on: push
    jobs:
      tools:
        steps:
          - id: node
            uses: actions/setup-node@v4
            with:
              node-version: "{n[0]}"
          - id: java
            uses: actions/setup-java@v4
            with:
              distribution: temurin
              java-version: "{j[0]}"
          - run: |
              set -x
              node --version | grep -q "^v{n[0]}\\."
              test "${{{{ steps.node.outputs.node-version }}}}" = "$(node --version)"
              case "$(command -v node)" in
                "${{{{ runner.tool_cache }}}}"/*|/usr/*) ;;
                *) exit 9;;
              esac
              test -x "$JAVA_HOME/bin/java"
              test "$JAVA_HOME" = "$JAVA_HOME_{j[0]}_X64"
              java -version 2>&1 | grep -q 'version "{j[0]}'
              test "$(command -v python)" != "$(dirname "$(command -v node)")/python"
    """
    (job,) = run_workflow(wf)
    text = "\n".join(lines_of(job))
    assert job.conclusion is Conclusion.SUCCESS, text
    assert f"Successfully set up Node.js (v{node[0].version_text})" in text


def fake_tool(path: Path, output: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)


def test_a_toolchain_folder_is_readable_in_the_sandbox(
    run_workflow: RunFn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "toolchains"
    fake_tool(folder / "go-1.22.1" / "bin" / "go", "go version go1.22.1 linux/amd64")
    fake_tool(folder / "uv-0.5.4" / "bin" / "uv", "uv 0.5.4")
    monkeypatch.setenv(toolchains.ENV_VAR, str(folder))
    wf = """
    on: push
    jobs:
      tools:
        steps:
          - id: go
            uses: actions/setup-go@v5
            with:
              go-version: "1.22"
          - uses: astral-sh/setup-uv@v5
          - run: |
              go version | grep -q go1.22.1
              test "$(command -v go)" = "FOLDER/go-1.22.1/bin/go"
              uv --version
              test "${{ steps.go.outputs.go-version }}" = 1.22.1
    """.replace("FOLDER", str(folder))
    (job,) = run_workflow(wf)
    text = "\n".join(lines_of(job))
    assert job.conclusion is Conclusion.SUCCESS, text
    assert "Successfully set up Go (1.22.1)" in text and "Successfully set up uv (0.5.4)" in text


def test_a_tool_not_installed_is_a_warning(
    run_workflow: RunFn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(toolchains.ENV_VAR, str(tmp_path / "empty"))
    wf = """
    on: push
    jobs:
      tools:
        steps:
          - uses: actions/setup-node@v4
            with:
              node-version: "99"
          - uses: actions/setup-java@v4
            with:
              java-version: "98"
          - run: echo went on
    """
    (job,) = run_workflow(wf)
    lines = lines_of(job)
    assert job.conclusion is Conclusion.SUCCESS, "\n".join(lines)
    assert (
        "##[warning]Node.js 99 is not installed on this machine; the steps use the node on "
        "PATH, if any." in lines
    )
    assert any(ln.startswith("##[warning]Java 98 is not installed") for ln in lines)
    assert "went on" in lines


def test_checkout_cache_artifacts_and_other_actions(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      misc:
        steps:
          - uses: actions/checkout@v4
          - id: cache
            uses: actions/cache@v4
            with:
              path: ~/.cache/pip
              key: ${{ runner.os }}-pip
          - uses: actions/upload-artifact@v4
            with:
              name: report
              path: out/
          - uses: actions/download-artifact@v4
          - uses: some/other-action@v1
          - run: test "${{ steps.cache.outputs.cache-hit }}" = false
    """
    (job,) = run_workflow(wf)
    lines = lines_of(job)
    assert job.conclusion is Conclusion.SUCCESS, "\n".join(lines)
    text = "\n".join(lines)
    assert "the workspace is already a checkout of" in text
    assert "  key: Linux-pip" in lines
    assert "actions/cache@v4 is not run locally: no cache is restored or saved" in text
    assert "no artifact is uploaded" in text and "no artifact is downloaded" in text
    assert "some/other-action@v1 is not run; the host's installed tools are on PATH." in text


def test_an_invalid_input_expression_fails_the_step(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      bad:
        steps:
          - uses: actions/setup-python@v5
            with:
              python-version: ${{ fromJSON('[') }}
    """
    (job,) = run_workflow(wf)
    assert job.conclusion is Conclusion.FAILURE
    assert "##[error]The step's inputs have an invalid expression" in job.read_log()


def test_the_tool_cache_is_a_job_folder(run_workflow: RunFn) -> None:
    wf = """
    on: push
    jobs:
      one:
        steps:
          - run: touch "${{ runner.tool_cache }}/mark" && test -w "${{ runner.tool_cache }}"
    """
    (job,) = run_workflow(wf)
    assert job.conclusion is Conclusion.SUCCESS, job.read_log()

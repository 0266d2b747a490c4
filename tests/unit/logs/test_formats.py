from __future__ import annotations

from pathlib import Path

from cicd_orchestrator.logs.analyze import analyze_path, analyze_text
from cicd_orchestrator.logs.formats import detect_format


def test_detect_formats(log_fixtures: Path) -> None:
    for name, fmt in (
        ("github_fail", "github"),
        ("gitlab_fail", "gitlab"),
        ("jenkins_fail", "jenkins"),
    ):
        sample = (log_fixtures / f"{name}.log").read_text(errors="replace")
        assert detect_format(sample) == fmt
    assert detect_format("hello\nworld\n") == "plain"


def test_github_steps(log_fixtures: Path) -> None:
    a = analyze_path(log_fixtures / "github_fail.log")
    steps = [(s.name, s.conclusion) for s in a.steps]
    assert steps[:3] == [
        ("Run actions/checkout@v4", "success"),
        ("Run python -m pip install -r requirements.txt", "success"),
        ("Run python -m pytest -q", "failure"),
    ]
    failed = a.steps[2]
    assert failed.start == 14 and failed.end == 31
    assert a.failed_step is failed


def test_github_full_form_uses_the_step_column() -> None:
    ts = "2021-12-01T13:01:04.3787743Z"
    text = "\n".join(
        [
            f"ci\tSet up job\t{ts} Runner",
            f"ci\tbuild\t{ts} compiling",
            f"ci\tbuild\t{ts} error: boom",
        ]
        + [f"ci\ttest\t{ts} ok {i}" for i in range(3)]
    )
    a = analyze_text(text + "\n", fmt="github")
    assert [s.name for s in a.steps] == ["Set up job", "build", "test"]
    assert (a.steps[1].start, a.steps[1].end) == (2, 3)


def test_gitlab_sections(log_fixtures: Path) -> None:
    a = analyze_path(log_fixtures / "gitlab_fail.log")
    assert a.format == "gitlab"
    by_name = {s.name: s for s in a.steps}
    assert list(by_name) == [
        "prepare_executor",
        "get_sources",
        "step_script",
        "cleanup_file_variables",
    ]
    assert by_name["step_script"].conclusion == "failure"
    assert by_name["prepare_executor"].conclusion == "success"
    assert a.pattern == "ruff-check"


def test_jenkins_stages(log_fixtures: Path) -> None:
    a = analyze_path(log_fixtures / "jenkins_fail.log")
    assert [(s.name, s.conclusion) for s in a.steps] == [
        ("Checkout", "success"),
        ("Build", "failure"),
        ("Test", "skipped"),
    ]
    assert a.excerpts[0].start <= 19 <= a.excerpts[0].end


def test_jenkins_freestyle_shell_step() -> None:
    text = (
        "Started by user x\n[app] $ /bin/sh -xe /tmp/jenkins1.sh\n+ make\nmake: *** [all] Error 2\n"
    )
    text += "Build step 'Execute shell' marked build as failure\nFinished: FAILURE\n"
    a = analyze_text(text)
    assert a.format == "jenkins"
    assert a.steps[0].name.startswith("/bin/sh") and a.steps[0].conclusion == "failure"

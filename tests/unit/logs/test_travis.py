"""Travis CI logs (the LogChunks format): lines as the file counts them, each command a step,
the failed command read first."""

from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import analyze_text

ESC = "\x1b"


def _travis_log() -> str:
    fold = f"travis_fold:start:install\r{ESC}[0Ktravis_time:start:0a1b\r{ESC}[0K"
    lines = [
        "Worker information",
        f"{fold}$ bundle install",
        "Fetching gem metadata from https://rubygems.org/\rResolving dependencies...",
        f"travis_time:end:0a1b:start=1,finish=2,duration=1\r{ESC}[0K"
        f'{ESC}[32;1mThe command "bundle install" exited with 0.{ESC}[0m',
        f"travis_time:start:0c2d\r{ESC}[0K$ bundle exec rspec",
        "....F..",
        "Failures:",
        "  1) Cart totals rounds half up",
        "     Failure/Error: expect(cart.total).to eq(1.01)",
        "       expected: 1.01",
        "            got: 1.0",
        "7 examples, 1 failure",
        f"travis_time:end:0c2d:start=3,finish=4,duration=1\r{ESC}[0K"
        f'{ESC}[31;1mThe command "bundle exec rspec" exited with 1.{ESC}[0m',
        f"travis_fold:start:cache.2\r{ESC}[0Kstore build cache",
        "Done. Your build exited with 1.",
    ]
    return "\r\n".join(lines) + "\r\n"


def test_a_travis_log_is_read_by_its_commands() -> None:
    a = analyze_text(_travis_log())
    assert a.format == "travis"
    assert a.lines == 15  # \r\n ends a line, a lone \r does not
    steps = {s.name: s for s in a.steps}
    assert steps["bundle install"].conclusion == "success"
    rspec = steps["bundle exec rspec"]
    assert (rspec.start, rspec.end, rspec.conclusion) == (5, 13, "failure")
    first = a.excerpts[0]
    assert first.start <= 9 <= first.end and first.end - first.start < 20  # Failure/Error
    assert "Failure/Error" in first.text
    assert a.category is FailureCategory.TEST


def test_line_numbers_are_the_files_own() -> None:
    text = "ok\rstill line one\nERROR: something broke\r\n"
    a = analyze_text(text)
    assert a.lines == 2
    assert (a.excerpts[0].start, a.excerpts[0].end) == (2, 2)

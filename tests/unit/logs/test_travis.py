"""Travis CI logs (the LogChunks format): lines as the file counts them, each command a step,
the failed command read first."""

from __future__ import annotations

from collections.abc import Callable

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.analyze import analyze_text
from cicd_orchestrator.models import Excerpt

ESC = "\x1b"
#: the first excerpt of a log given as its lines (the ``first_excerpt`` fixture)
FirstExcerpt = Callable[..., Excerpt]


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


def test_a_tools_last_words_never_outrank_the_lines_above_that_say_why() -> None:
    """npm's lifecycle block and make's exit lines only restate a failure: the browser's
    error above them is the excerpt, even though the restatement closes the command."""
    lines = [
        "travis_time:start:0c2d\r$ npm run lint",
        "> pkg@1.0.0 lint /home/travis/build/o/pkg",
        "> markdownlint README.md",
        "",
        "Chrome 75.0.3770 (Mac OS X 10.13.6) ERROR",
        "  Disconnected, because no message in 30000 ms.",
        *[f"progress {i}" for i in range(100)],
        "npm ERR! code ELIFECYCLE",
        "npm ERR! errno 1",
        "npm ERR! pkg@1.0.0 lint: `markdownlint README.md`",
        "npm ERR! Exit status 1",
        "npm ERR! ",
        "npm ERR! Failed at the pkg@1.0.0 lint script.",
        "npm ERR! This is probably not a problem with npm.",
        "npm ERR!     /home/travis/.npm/_logs/2019-07-09T04_58_25_372Z-debug.log",
        "make: *** [lint] Error 1",
        "travis_time:end:0c2d:start=3,finish=4,duration=1\r"
        'The command "npm run lint" exited with 1.',
        "Done. Your build exited with 1.",
    ]
    analysis = analyze_text("\n".join(lines), fmt="travis")
    first = analysis.excerpts[0]
    assert (first.start, first.end) == (5, 6), analysis.excerpts


def test_a_commands_last_words_stay_the_excerpt_when_nothing_says_more() -> None:
    lines = [
        "travis_time:start:0c2d\r$ latexmk std.tex",
        *[f"typesetting page {i}" for i in range(10)],
        "Overfull \\hbox (2.26pt too wide) in paragraph at lines 4826--4842",
        "travis_time:end:0c2d:start=3,finish=4,duration=1\r"
        'The command "latexmk std.tex" exited with 1.',
    ]
    analysis = analyze_text("\n".join(lines), fmt="travis")
    first = analysis.excerpts[0]
    assert first.start <= 12 <= first.end, analysis.excerpts


def test_when_several_commands_failed_the_first_is_read_first(first_excerpt: FirstExcerpt) -> None:
    """Travis runs every ``script`` command: a later one that fails because the first did is
    not where the job went wrong."""
    lines = [
        "travis_time:start:0a1b\r$ xcodebuild -scheme App-iOS build-for-testing test | xcpretty",
        "\u25b8 Compiling JSON.swift",
        "\u274c  /w/Source/JSON.swift:97:2: unknown attribute 'dynamicMemberLookup'",
        "** TEST BUILD FAILED **",
        'The command "xcodebuild -scheme App-iOS build-for-testing test | xcpretty" exited '
        "with 65.",
        "travis_time:start:0c2d\r$ xcodebuild -scheme App-macOS build-for-testing test",
        *[f"CompileSwift normal x86_64 /w/Source/File{i}.swift" for i in range(30)],
        "/w/Source/JSON.swift:97:2: error: unknown attribute 'dynamicMemberLookup'",
        "Testing failed:",
        "\tUnknown attribute 'dynamicMemberLookup'",
        'The command "xcodebuild -scheme App-macOS build-for-testing test" exited with 65.',
        "Done. Your build exited with 1.",
    ]
    first = first_excerpt(lines, fmt="travis")
    assert first.start <= 3 <= first.end, first


def test_the_first_failed_commands_last_words_are_before_its_own_end(
    first_excerpt: FirstExcerpt,
) -> None:
    """A compile error early in the first failed command still leads over a later command's
    error next to the job's end."""
    lines = [
        "travis_time:start:0a1b\r$ docker build -t app .",
        "src/Fixer.hs:38:10: error:",
        "    Not in scope: type constructor or class `Semigroup'",
        *[f"[{i} of 20] Compiling Module{i}" for i in range(20)],
        'The command "docker build -t app ." exited with 1.',
        "travis_time:start:0b1c\r$ docker build -f Dockerfile.alpine -t app .",
        *[f"Step {i}/300 : RUN make module{i}" for i in range(300)],
        'The command "docker build -f Dockerfile.alpine -t app ." exited with 1.',
        "travis_time:start:0c2d\r$ cp dist/app.exe deploy/",
        "cp: cannot stat 'dist/app.exe': No such file or directory",
        ".\\dist\\setup\\setup.version: openFile: permission denied (Permission denied)",
        'The command "cp dist/app.exe deploy/" exited with 1.',
        "travis_time:start:0e3f\r$ rm -rf dist || true",
        *[f"rm: cannot remove 'dist/build/M{i}.o': Permission denied" for i in range(8)],
        "Done. Your build exited with 1.",
    ]
    first = first_excerpt(lines, fmt="travis")
    assert first.start <= 2 <= first.end, first

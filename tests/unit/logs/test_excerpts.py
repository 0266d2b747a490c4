from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from cicd_devkit import datasets

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs import prefilter
from cicd_orchestrator.logs.analyze import analyze_log, analyze_path, analyze_text
from cicd_orchestrator.logs.patterns import load_library
from cicd_orchestrator.logs.scoring import score_line
from cicd_orchestrator.models import Excerpt

CIDIFF = datasets.CIDIFF
#: the first excerpt of a log given as its lines (the ``first_excerpt`` fixture)
FirstExcerpt = Callable[..., Excerpt]


def cidiff_cases() -> list[str]:
    return sorted(p.name for p in CIDIFF.iterdir()) if CIDIFF.is_dir() else []


def first_hits(case: str, excerpts: list[Excerpt]) -> bool:
    """The first excerpt holds a groundtruth line (in the groundtruth's numbering)."""
    if not excerpts:
        return False
    got = datasets.cidiff_lines(CIDIFF / case, excerpts[0].start, excerpts[0].end)
    return bool(got & datasets.cidiff_groundtruth(CIDIFF / case))


requires_cidiff = pytest.mark.skipif(not CIDIFF.is_dir(), reason="cidiff dataset not present")


def test_excerpt_without_baseline(log_fixtures: Path) -> None:
    a = analyze_path(log_fixtures / "github_fail.log")
    first = a.excerpts[0]
    assert first.start <= 29 <= first.end
    assert first.pattern == "pytest-failed" and first.category is FailureCategory.TEST
    assert a.tests == ["tests/test_totals.py::test_line_total_rounds_half_up"]
    assert a.category is FailureCategory.TEST and a.recipe == "revert-culprit"


def test_baseline_turns_lines_of_the_pass_log_into_noise(log_fixtures: Path) -> None:
    noisy = 18  # "ERROR:root:simulated error logged by a passing test" is in both logs
    without = analyze_path(log_fixtures / "github_fail.log")
    assert any(e.start <= noisy <= e.end for e in without.excerpts)
    with_base = analyze_path(log_fixtures / "github_fail.log", log_fixtures / "github_pass.log")
    assert not any(e.start <= noisy <= e.end for e in with_base.excerpts)
    assert with_base.excerpts[0].start <= 29 <= with_base.excerpts[0].end


def test_lines_just_before_the_failure_marker_are_an_excerpt() -> None:
    ts = "2024-05-01T10:00:00.0000000Z "
    lines = [
        "##[group]Run ./deploy.sh",
        "./deploy.sh",
        "##[endgroup]",
        "uploading bundle",
        "bundle rejected by host",
    ]
    text = (
        "\n".join(ts + line for line in [*lines, "##[error]Process completed with exit code 3."])
        + "\n"
    )
    a = analyze_text(text)
    assert (a.excerpts[0].start, a.excerpts[0].end) == (4, 6)


def test_traceback_is_one_excerpt_with_its_exception() -> None:
    text = 'step one\nTraceback (most recent call last):\n  File "x.py", line 3, in <module>\n'
    text += "    main()\nValueError: bad value\n\nall done\n"
    a = analyze_text(text)
    assert (a.excerpts[0].start, a.excerpts[0].end) == (2, 5)


def test_no_failure_signal_gives_the_tail() -> None:
    a = analyze_text("".join(f"building part {i}\n" for i in range(50)))
    assert a.excerpts and a.excerpts[0].end == 50
    assert a.category is FailureCategory.UNKNOWN


def test_empty_log() -> None:
    a = analyze_log(io.BytesIO(b""))
    assert a.lines == 0 and a.excerpts == [] and a.signature


def test_signature_stable_across_runs(log_fixtures: Path) -> None:
    text = (log_fixtures / "github_fail.log").read_text()
    shifted = text.replace("2024-05-01T10:00:00.1234567Z", "2025-02-03T04:05:06.7654321Z")
    assert analyze_text(text).signature == analyze_text(shifted).signature


@requires_cidiff
@pytest.mark.parametrize("case", ["casper_1774", "cidiff_75", "pushcommentgithub_173", "spork_441"])
def test_cidiff_pairs_first_excerpt_hits(case: str) -> None:
    a = analyze_path(CIDIFF / case / "fail.log", CIDIFF / case / "pass.log")
    assert first_hits(case, a.excerpts)


@requires_cidiff
@pytest.mark.slow
@pytest.mark.parametrize("with_baseline", [True, False])
def test_cidiff_hit_at_1(with_baseline: bool) -> None:
    cases = cidiff_cases()
    hits = 0
    for case in cases:
        base = CIDIFF / case / "pass.log" if with_baseline else None
        hits += first_hits(case, analyze_path(CIDIFF / case / "fail.log", base).excerpts)
    assert hits / len(cases) >= (0.85 if with_baseline else 0.75)


def test_an_unknown_failure_is_said_without_the_log_markup() -> None:
    text = (
        "2024-05-01T10:00:00.0000000Z ##[group]Run yes\n"
        "2024-05-01T10:00:00.0000000Z y\n"
        "2024-05-01T10:00:01.0000000Z ##[error]The step wrote more than 2000000 bytes of "
        "output; the rest was not recorded and the step was stopped.\n"
    )
    a = analyze_text(text)
    assert a.pattern is None
    assert a.message.startswith("The step wrote more than 2000000 bytes of output")


def _go_failure(name: str) -> list[str]:
    return [
        f"--- FAIL: {name} (2.62s)",
        "\tproxied_test.go:126: Error Trace: proxied_test.go:78",
        "\t\tError: Should be true",
        *[f"DEBUG proxied.go:{i} request sent" for i in range(30)],
    ]


def test_the_first_of_several_failures_of_a_kind_leads(first_excerpt: FirstExcerpt) -> None:
    """Two tests failed the same way: the first is the one a person reads first; a summary
    that repeats the last failure is not another failure."""
    log = [
        *[f"=== RUN TestSetup{i}" for i in range(20)],
        *_go_failure("TestParallelPreferChained"),
        *_go_failure("TestChainedThenFronted"),
        "FAIL",
        "FAIL\tgithub.com/example/proxied\t7.831s",
        'The command "make test" exited with 1.',
    ]
    first = first_excerpt(log)
    assert first.start <= 21 <= first.end
    repeated = [*_go_failure("TestChainedThenFronted"), *_go_failure("TestChainedThenFronted")]
    b = analyze_text("\n".join([*repeated, 'The command "make test" exited with 1.']) + "\n")
    assert b.excerpts[0].start > 33  # the later one, next to where the step failed


def test_maven_s_test_failure_leads_not_its_last_words(log_fixtures: Path) -> None:
    """The output of ``mvn -B test`` with a failing JUnit 5 test: the failed test with its
    assertion comes first, not Maven's "There are test failures" and its help lines."""
    analysis = analyze_path(log_fixtures / "maven_surefire_fail.log")
    first = analysis.excerpts[0].text
    assert "CalcTest.addsTwoNumbers" in first and "<<< FAILURE!" in first
    assert "expected: <5> but was: <-1>" in first
    assert analysis.category is FailureCategory.TEST


@pytest.mark.parametrize(
    ("fixture", "lines"),
    [
        # rspec's failure: the numbered name, then indented details with blank lines between
        ("ruby_rspec_travis.log", ["1) Calc adds two numbers", "expected: 5", "got: -1"]),
        # minitest's: "1) Failure:", the test and its place, the values unindented
        (
            "ruby_minitest_gha.log",
            ["1) Failure:", "CalcTest#test_add", "Expected: 5", "Actual: -1"],
        ),
        # jest's: "\u25cf suite \u203a test" and its details, not its "FAIL <file>" result list
        ("js_jest_gha.log", ["\u25cf calc \u203a adds two numbers", "Expected: 5", "Received: -1"]),
        # CTest's: the test's "***Failed" line and its output, not "The following tests FAILED"
        ("cpp_ctest_travis.log", ["Test #1: test_calc", "FAILED: add(2, 3) == 6, got 5"]),
        # Test::More's: the failed test, then its "#   " diagnostics (where, got, expected)
        ("perl_prove_travis.log", ["Failed test 'adds two numbers'", "got: '-1'", "expected: '5'"]),
        # ExUnit's: "1) test raises (CalcTest)", its place, then the error, two lines down
        ("elixir_mix_test_travis.log", ["1) test raises (CalcTest)", "(KeyError) key :x"]),
        # cargo test's: the first test's panic (newer Rust names the thread's id), not the
        # "test x ... FAILED" lines or cargo's "error: test failed, to rerun pass"
        ("rust_cargo_test_travis.log", ["adds_two_numbers' (30288) panicked", "left: -1"]),
        # busted's: "Failure -> file @ line", the test, the message and the values, unindented
        ("lua_busted_travis.log", ["Failure -> spec/calc_spec.lua @ 4", "(number) 5"]),
        # pytest's: the failure section (the failing line, its E lines), not the short summary
        ("python_pytest_travis.log", [">       self.assertEqual(add(2, 3), 5)", "E       Asser"]),
        # GoogleTest's: "file:line: Failure" and the values, not its list of failed tests
        ("cpp_gtest_travis.log", ["test_money.cpp:6: Failure", "Which is: 1695"]),
        # ... also under CTest, whose "***Failed" line only says which test
        ("cpp_gtest_ctest_gha.log", ["split_test.cpp:13: Failure", "Which is: 2"]),
        # a CTest timeout (no failure word), not the step's script echoed above it
        # ("ctest --output-on-failure"), nor CTest's summary
        ("cpp_ctest_timeout_gha.log", ["Test #2: queue_shutdown", "***Timeout"]),
        # Maven's test error: the test and its exception, not "Failed to execute goal ...
        # surefire" and its help lines
        (
            "maven_surefire_error_travis.log",
            ["userWithoutEmailHasNoDomain", "<<< ERROR!", "NullPointerException"],
        ),
        # EUnit's: the numbered test and its Erlang error term, not rebar3's last words
        ("erlang_eunit_travis.log", ["1) config_parser_tests:comment_lines_test/0", "{badmatch,"]),
        # a test script that died: its message, not prove's Test Summary Report
        ("perl_prove_die_gha.log", ["Invalid port '8080"]),
        # node's assert under cake: the AssertionError, not the same values restated as the
        # error object's properties ("expected: 'creme-brulee',")
        ("coffee_cake_assert_travis.log", ["AssertionError [ERR_ASSERTION]"]),
    ],
)
def test_a_test_runners_failure_is_read_whole_first(
    log_fixtures: Path, fixture: str, lines: list[str]
) -> None:
    """Real output of rspec, minitest (under rake), jest, CTest, prove, ExUnit, cargo test,
    busted and pytest, in Travis and GitHub Actions jobs: the first failure leads, with the lines
    that say what was expected."""
    analysis = analyze_path(log_fixtures / fixture)
    first = analysis.excerpts[0].text
    assert all(line in first for line in lines), first
    assert analysis.category is FailureCategory.TEST


@pytest.mark.parametrize(
    ("fixture", "line", "text"),
    [
        # Maven lists javac's errors, then repeats them under "Failed to execute goal"
        ("maven_compile_error_travis.log", 22, "[14,31] cannot find symbol"),
        # TeX stops at an error, then again at its consequence further on
        ("tex_latexmk_gha.log", 38, "l.4 The lookup runs in O(log n) time"),
    ],
)
def test_an_error_said_twice_is_read_where_it_was_first_said(
    log_fixtures: Path, fixture: str, line: int, text: str
) -> None:
    analysis = analyze_path(log_fixtures / fixture)
    first = analysis.excerpts[0]
    assert first.start == line and text in first.text, first
    assert "Failed to execute goal" not in first.text
    assert analysis.category is FailureCategory.BUILD


def test_go_test_v_s_messages_above_a_failed_test_belong_to_it(log_fixtures: Path) -> None:
    """Under ``go test -v`` a test's messages come before its ``--- FAIL:`` line (real
    output): the excerpt of the failed test carries them."""
    analysis = analyze_path(log_fixtures / "go_test_v_travis.log")
    (excerpt,) = [e for e in analysis.excerpts if "--- FAIL: TestAdd" in e.text]
    assert "calc_test.go:7: Add(2, 3) = -1, want 5" in excerpt.text


def test_a_compile_error_that_says_expected_is_no_test_failure(log_fixtures: Path) -> None:
    """``mix compile`` (real output): "** (CompileError) ... (expected Calc to define such a
    function ...)" is a build failure; "expected" votes for a test only as an assertion's
    "expected X to equal Y"."""
    analysis = analyze_path(log_fixtures / "elixir_mix_compile_travis.log")
    assert analysis.category is FailureCategory.BUILD
    assert "Compilation error in file lib/calc.ex" in analysis.excerpts[0].text


def test_a_tap_failure_named_no_errors_is_a_failure(first_excerpt: FirstExcerpt) -> None:
    log = ["# passes a good component", "ok 5 no warnings", "not ok 6 no errors", "  ---",
           "    operator: notOk", "  ...", *[f"# step {i}" for i in range(40)],
           "# fail  1"]  # fmt: skip
    first = first_excerpt(log)
    assert first.start <= 3 <= first.end


@pytest.fixture(scope="module")
def searcher() -> prefilter.Searcher:
    return prefilter.compile_prefilter(load_library().prefilter_regex())


@pytest.mark.parametrize(
    "line",
    [
        "     Failure/Error: expect(user.name).to eq('bob')",
        "  1) Failure:",
        "1) Composer\\Test\\SolverTest::testUnsatisfiableRequires",
        "  1) test parses the header (MyApp.ParserTest)",
        "FAIL in (test-parse) (parse_test.clj:12)",
        "thread 'tests::parse' panicked at 'assertion failed', src/lib.rs:12:5",
        "#   Failed test 'adds two numbers'",
        "── 1. Failure: parse works (@test-parse.R#4) ──────────",
        "Failure → spec/parse_spec.lua @ 3",
        "    [-] ThreadJob with Using variables 41ms",
        "    Nancy.Tests.BrowserFixture.Should_return_JSON [FAIL]",
        "  Failed Nancy.Tests.BrowserFixture.Should_return_JSON [12 ms]",
        "Failed Nancy.Tests.BrowserFixture.Should_return_JSON",
        "    --- FAIL: TestParse/empty_input (0.00s)",
        "Failure -> spec/calc_spec.lua @ 4",
        "_______________ ERROR collecting tests/test_shell.py _______________",
        "CSC : error CS5001: Program does not contain a static 'Main' method",
        "e2e/app.e2e-spec.ts (5,1): Cannot find name 'describe'. (2304)",
        "nl\u274c  /src/JSON.swift:97:2: unknown attribute 'dynamicMemberLookup'",
        "[ERROR] /w/src/main/java/App.java:[12,5] cannot find symbol",
        "[error] /w/src/Foo.scala:3:8: object bar is not a member of package foo",
        "e: /w/src/Main.kt: (12, 5): Unresolved reference: foo",
        './main.go:12:5: imported and not used: "os"',
        "! LaTeX Error: File `foo.sty' not found.",
        "CMake Error at CMakeLists.txt:12 (find_package):",
        "./ci/setup.sh: line 3: rake: command not found",
        "/w/lib/app.rb:12:in `call': undefined local variable or method `x' (NameError)",
        "Error in library(lubridate) : there is no package called 'lubridate'",
        "  Liquid Exception: Liquid syntax error (line 3): Unknown tag 'foo' in index.md",
        "Dubious, test returned 255 (wstat 65280, 0xff00)",
        "      tables:                                                FAIL (0.06s)",
        "  test_0001_renders the page                                 ERROR (0.01s)",
        "  FAIL TestSite#test_0001_renders (0.00s)",
        "Failure:",
        "Failed example:",
        "      Expected false to be truthy.",
        "  Expected 3 to equal 4.",
        "test/functional/ui/screen_spec.lua:124: Expected objects to be the same.",
        "Test Case '-[RACSignalSpec testMap]' failed (0.012 seconds).",
        "src/eval.c:120:  Lines should be <= 80 characters long  [whitespace/line_length] [2]",
        "At /home/runner/build.psm1:12 char:5",
        "  /w/src/app.js:12:5: Extra semicolon.",
        "src/elixir_erl.erl:12: function foo/0 undefined",
        "[ERROR] /w/src/main/java/App.java:12:5: Missing a Javadoc comment. [JavadocType]",
        "[INFO] PMD Failure: com.example.App:12 Rule:UnusedPrivateField Priority:3 Avoid it.",
        "[WARNING] Rule 0: org.apache.maven.enforcer.RequireJavaVersion failed with message:",
        "Warning, treated as error:",
        "File not formatted. Run the 'Format Document' command to fix it: src/vs/editor.ts",
        "  Line   src/Composer/Installer.php                                    ",
        "[  FAILED  ] spec/parse_spec.lua @ 12: parse rejects junk (0.08 ms)",
        "[ RUN      ] jobs does not invoke callbacks recursively: 1507.49 ms FAIL",
        "[ RUN      ] jobs does not invoke callbacks recursively: 1507.49 ms ERR",
        "! Emergency stop.",
        "src/app.ts(5,1): Argument of type 'x' is not assignable to parameter of type 'y'.",
        "e: /w/src/Main.kt: (12, 5): Expecting an element",
        "==4521== Conditional jump or move depends on uninitialised value(s)",
        "/usr/bin/python3: No module named pytest",
        "Expected: is <1>",
        "Main has been compiled by a more recent version of the Java Runtime (class file 55.0)",
        "./test/functional/ui/screen.lua:440: attempt to index local 'cell' (a nil value)",
        "    - ERROR | [iOS] unknown: Encountered an unknown error during validation.",
        "[error]  * class akka.cluster.Msg does not have a correspondent in current version",
        "Working tree is not clean after regenerating the sources",
    ],
)
def test_the_failure_headers_of_the_test_runners_and_compilers_are_telling(
    line: str, searcher: prefilter.Searcher
) -> None:
    """Each scores as a failure, and the prefilter lets it through (a line it skips is never
    scored), coloured as a terminal prints it too."""
    assert score_line(line) >= 2.5
    for raw in (line, f"\x1b[31m{line}\x1b[0m"):
        data = raw.encode() + b"\n"
        assert searcher.search(searcher.prepare(data), 0, len(data)) is not None, raw


def test_a_wrappers_exit_code_and_a_progress_line_only_restate() -> None:
    assert score_line("[00:04:30] Error: Process exited with code: 5") <= 1.8
    assert score_line("tests/test_ssl.py::test_dhparam_is_used FAILED   [ 42%]") <= 1.8
    # a runner script's "FAILED <suite>", as go's "FAIL\tpkg": the suite's own output says why
    assert score_line("FAILED tests/Composer/Test/DependencyResolver") <= 1.8
    # and pytest's short summary: the failure sections above it say why
    assert score_line("FAILED tests/unit/test_api.py::test_get - KeyError: 'id'") <= 1.8
    # xcodebuild's, tasty's, cabal's, XCTest's and cpplint's last words
    for line in (
        "Testing failed:",
        "The following build commands failed:",
        "2018-09-22 08:25:27.105 xcodebuild[2543:9590] Error Domain=IDETestOperationsObserver"
        'ErrorDomain Code=14 "Test operation was canceled."',
        "1 out of 2041 tests failed (45.46s)",
        "Test suite test-pandoc: FAIL",
        "Executed 120 tests, with 1 failure (0 unexpected) in 2.043 (2.101) seconds",
        "Total errors found: 3",
        "[  ERROR   ] 1 error, listed below:",
        "    - ERROR | [iOS] xcodebuild: Returned an unsuccessful exit code.",
        "[!] ReactiveCocoa did not pass validation, due to 1 error.",
        "wallet_address_types.py                | \u2716 Failed  | 94 s",
        "[error] java.lang.RuntimeException: akka-cluster: Binary compatibility check failed!",
        " [ERROR] Found 1 error                                                          ",
    ):
        assert score_line(line) <= 1.8, line


def test_a_diff_printed_last_is_read_from_its_head() -> None:
    """A check that prints a diff (a formatter's, generated code out of date) and fails: the
    diff's first file and hunk lead, and the code it shows (words such as "NotFound" or "Too
    many requests") is not read as messages."""
    diff = [
        "diff --git a/errcodes/codes_gen.go b/errcodes/codes_gen.go",
        "--- a/errcodes/codes_gen.go",
        "+++ b/errcodes/codes_gen.go",
        "@@ -8,6 +8,8 @@ const (",
        " \tNotFound         Code = 1004",
        "+\tRateLimited      Code = 1006",
        *[f" \tline{i}: 0," for i in range(30)],
        "@@ -40,3 +42,4 @@ var messages = map[Code]string{",
        ' \tNotFound:         "The requested resource does not exist.",',
        '+\tRateLimited:      "Too many requests; retry later.",',
        " }",
    ]
    log = ["$ make check-generated", "go generate ./...", "git diff --exit-code", *diff]
    log.append('The command "make check-generated" exited with 1.')
    analysis = analyze_text("\n".join(log) + "\n")
    first = analysis.excerpts[0]
    assert first.start == 4 and first.text.startswith("diff --git a/errcodes/codes_gen.go")
    assert analysis.category is FailureCategory.QUALITY, analysis.reasons


def test_a_check_that_generated_files_are_committed_leads_over_the_runners_last_words() -> None:
    """The build ran clean, then the check found files it changed: that check's line says
    why (a quality finding), not the runner's "Command failed" after it."""
    log = [
        "$ yarn test",
        "$ gulp && git status | grep 'working tree clean' || (echo 'Please commit the "
        "regenerated files'; exit 1)",
        *[f"[12:37:{i:02}] Finished 'task{i}' after 8 ms" for i in range(20)],
        "Please commit the regenerated files",
        "error Command failed with exit code 1.",
        "info Visit https://yarnpkg.com/en/docs/cli/run for documentation about this command.",
        'The command "yarn test" exited with 1.',
    ]
    analysis = analyze_text("\n".join(log) + "\n")
    first = analysis.excerpts[0]
    assert first.start <= 23 <= first.end, first
    assert analysis.category is FailureCategory.QUALITY, analysis.reasons


def test_a_long_diff_is_walked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a line is a diff's is asked of each candidate line that could be one: the
    answer for the line above is reused, so a long block is read once, not once per line."""
    from cicd_orchestrator.logs import excerpts

    decoded = 0
    decode = excerpts._decode

    def counting(raw: bytes) -> str:
        nonlocal decoded
        decoded += 1
        return decode(raw)

    monkeypatch.setattr(excerpts, "_decode", counting)
    n = 3000
    log = ["@@ -1,3 +1,3 @@", *[f"-    raise ValueError('error {i}')" for i in range(n)]]
    analyze_text("\n".join([*log, "Error: Process completed with exit code 1."]) + "\n")
    assert decoded < 6 * n


def _name(i: int) -> str:
    return "".join(chr(97 + i // 26**k % 26) for k in range(3))


def test_the_first_of_very_many_failures_alike_is_kept_and_leads(
    first_excerpt: FirstExcerpt,
) -> None:
    """More failures of one kind than the reader keeps: the first still leads."""
    log = ["=" * 30 + " FAILURES " + "=" * 30]
    for i in range(120):
        log += [
            f"{'_' * 10} test_endpoint_{i} {'_' * 10}",
            "",
            f"    def test_endpoint_{i}(client):",
            f">       r = client.get('/port/{i}')",
            f"E       ConnectionError: HTTPConnectionPool(host='{_name(i)}.tld', port=80)",
            "",
            f"{'-' * 10} captured stdout {'-' * 10}",
            *[f"starting worker {j}" for j in range(12)],
        ]
    log.append("=" * 20 + " 120 failed in 812.1s " + "=" * 20)
    first = first_excerpt(log)
    assert first.start <= 6 <= first.end, first


def test_a_powershell_error_record_is_read_with_its_message(first_excerpt: FirstExcerpt) -> None:
    log = [
        *[f"Building module {i}" for i in range(20)],
        "Start-PSPester : Tests failed",
        "At /home/travis/build/PowerShell/build.psm1:1201 char:9",
        "+         Start-PSPester -Path $testPath",
        "+         ~~~~~~~~~~~~~~",
        "    + CategoryInfo          : NotSpecified: (:) [Write-Error], WriteErrorException",
        *[f"Cleaning {i}" for i in range(20)],
    ]
    first = first_excerpt(log)
    assert first.start <= 21 <= first.end, first


def test_a_coloured_cross_mark_is_a_failure_and_a_tick_is_not(first_excerpt: FirstExcerpt) -> None:
    """xcpretty colours its marks: the colour code between the mark and the test's name
    does not hide the failure, and the passing tests' ticks say nothing."""
    log = [
        *[f"    \x1b[32;1m\u2713\x1b[0m testIllegalCharacter{i} (0.004 seconds)" for i in range(3)],
        "    \x1b[31m\u2717\x1b[0m testCancelledRequestCallsCompletion, Test crashed",
        *[f"    \x1b[32;1m\u2713\x1b[0m testInvalidRequest{i} (0.004 seconds)" for i in range(300)],
        "\t Executed 529 tests, with 1 failure (0 unexpected) in 12.887 (13.516) seconds",
    ]
    first = first_excerpt(log)
    assert first.start == 4, first


def _gradle_log(task_output: list[str], what_went_wrong: list[str]) -> list[str]:
    """Gradle run with --stacktrace, as a Travis job prints it."""
    return [
        "travis_time:start:0a1b\r$ ./gradlew build --stacktrace",
        "> Task :compileJava",
        *task_output,
        *[f"io.example.Flow{i}Test > testOk PASSED" for i in range(30)],
        "",
        "FAILURE: Build failed with an exception.",
        "",
        *what_went_wrong,
        "",
        "* Exception is:",
        "org.gradle.api.tasks.TaskExecutionException: Execution failed for task ':test'.",
        *[f"\tat org.gradle.execution.Exec{i}.execute(Exec{i}.java:{i})" for i in range(40)],
        "Caused by: org.gradle.api.GradleException: There were failing tests.",
        *[f"\tat org.gradle.testing.Task{i}.run(Task{i}.java:{i})" for i in range(20)],
        "",
        "BUILD FAILED in 5m 12s",
        'The command "./gradlew build --stacktrace" exited with 1.',
    ]


def test_gradle_s_restatements_never_outrank_the_tasks_own_output(
    first_excerpt: FirstExcerpt,
) -> None:
    """The failed test leads; Gradle's count, its verdict on the task, its "what went wrong"
    and its own exceptions under --stacktrace only restate it."""
    log = _gradle_log(
        [
            "> Task :test",
            "",
            "io.example.flowable.FlowableFooTest > testBar FAILED",
            "    java.lang.AssertionError: Values at position 0 differ; Expected: 1, Actual: 2",
            "        at io.example.observers.BaseTestConsumer.fail(BaseTestConsumer.java:189)",
            "",
            "7123 tests completed, 1 failed, 23 skipped",
            "",
            "> Task :test FAILED",
        ],
        ["Execution failed for task ':test'.", "> There were failing tests. See the report."],
    )
    first = first_excerpt(log, fmt="travis")
    assert first.start <= 5 <= first.end, first


def test_what_went_wrong_leads_when_it_says_why(first_excerpt: FirstExcerpt) -> None:
    log = _gradle_log(
        ["> Task :compileJava FAILED"],
        [
            "Could not resolve all files for configuration ':compileClasspath'.",
            "> Could not find io.example:missing-lib:1.0.",
        ],
    )
    first = first_excerpt(log, fmt="travis")
    assert "Could not resolve all files" in first.text, first


def test_phpunit_s_numbered_failure_is_a_candidate_without_a_failure_word(
    first_excerpt: FirstExcerpt,
) -> None:
    log = [
        "PHPUnit 7.5.14 by Sebastian Bergmann and contributors.",
        "",
        "..E..",
        "",
        "There was 1 error:",
        "",
        "1) Composer\\Test\\ApplicationTest::testDevWarning",
        "Function ReflectionType::__toString() is deprecated",
        "",
        "/home/travis/build/composer/tests/Composer/Test/ApplicationTest.php:25",
        "",
        *[f"Installing package{i}" for i in range(30)],
        "Done",
    ]
    first = first_excerpt(log)
    assert first.start <= 7 <= first.end, first

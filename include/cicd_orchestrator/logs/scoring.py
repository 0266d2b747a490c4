"""How much a log line says about why a job failed: generic failure shapes, weighted.

These are generic signals (error keywords, workflow error commands, tracebacks, compiler and
test-runner failure shapes, final failure markers), not knowledge of any particular project.
"""

from __future__ import annotations

import functools
import logging
import re

log = logging.getLogger(__name__)

_UPPER_ESCAPE = re.compile(r"\\[A-Z]")


def _lc(pattern: str) -> re.Pattern[str]:
    """A case-insensitive rule, compiled to run on lower-cased text (much faster)."""
    if _UPPER_ESCAPE.search(pattern):
        raise ValueError(f"case-insensitive rule with an upper-case escape: {pattern}")
    return re.compile(pattern.lower())


#: go test's line of a failed test (a subtest's is indented); what the test logged comes
#: under it, or above it under ``-v``
GO_FAIL = r"^\s*--- FAIL: "
#: GoogleTest's failed expectation: "file:line: Failure", its values below
GTEST_FAILURE = r"^\S+:\d+: Failure$"
#: TeX's error: "! message", then where (``l.12 \texbf``) and what TeX did
TEX_ERROR = r"^! (?:LaTeX Error|Undefined control|Emergency stop|Missing|Package \w+ Error)"
#: XCTest's verdict on a test case (what failed is above it), Python doctest's failed example
XCTEST_FAILED = r"^Test Case '.+' failed \("
DOCTEST_FAILED = r"^Failed example:$"
#: a check that the generated files are committed says they are not (lower case: read in
#: lower-cased text)
NOT_COMMITTED = (
    r"please (?:commit|regenerate|rebuild)\b|working (?:tree|directory) (?:is )?not "
    r"clean|uncommitted changes"
)
#: findings that Maven logs at INFO or WARNING level: a PMD failure, an Enforcer rule (lower
#: case: read in lower-cased text)
MAVEN_AT_INFO = r"\bpmd failure: |\brule \d+: [^ ]+ failed with message:"
#: cpplint's finding (and its derivatives'): "path:line:  message  [category] [confidence]"
CPPLINT = r"^\S+:\d+:\s+.+\s\[[\w/+-]+\] \[[1-5]\]$"
#: failure headers whose details follow unindented, up to a blank line: busted's,
#: GoogleTest's, TeX's
BLOCK_HEADER = r"^(?:Failure|Error) (?:\u2192|->) |" + GTEST_FAILURE + "|" + TEX_ERROR

STRONG: list[tuple[re.Pattern[str], float, bool]] = [
    (re.compile(r"##\[error\](?!Process completed with exit code)"), 3.2, False),
    (re.compile(r"^::error\b"), 3.2, False),
    (re.compile(r"\bFailed to execute goal\b"), 3.0, False),
    (re.compile(r"^Traceback \(most recent call last\)"), 2.6, False),
    (
        re.compile(r"^(?:E\s+)?(?:[\w$]+\.)*[A-Z]\w*(?:Error|Exception|Failure|Exit)\b(?::|$)"),
        3.0,
        False,
    ),
    (_lc(r"(?:^|\s)error(?:\[\w+\]|\s?TS\d+)?:\s"), 2.6, True),
    (
        re.compile(
            r"^(?:FAILED|ERROR)\s+\S+::|^FAILED\b|\bFAILED\s*$|" + GO_FAIL + r"|^FAIL\b|"
            r"\*\*\* FAILED \*\*\*|"
            r"<<< (?:FAILURE|ERROR)!"
        ),
        2.8,
        False,
    ),
    (re.compile(r"^npm ERR!|^npm error |^error Command failed|^YN\d{4}:"), 2.4, False),
    # a compiler's or checker's diagnostic: path:line[:col]: error
    (re.compile(r"^\S+?:\d+(?::\d+)?:?\s+(?:fatal )?error\b", re.I), 2.8, False),
    # a linter's finding: path:line[:col]: CODE (E501, MD034, SC2086, W0611, no-unused-vars/...)
    # or path:line:col: C: (RuboCop's severity letter), or cpplint's
    (
        re.compile(
            r"^\S+?:\s?\d+(?::\d+)?:?\s+[A-Z]{1,4}\d{2,5}\b|^\S+:\d+:\d+: [CWERF]: |" + CPPLINT
        ),
        2.6,
        False,
    ),
    # test runners' failure shapes: TAP, PHPUnit, XCTest, Elixir/Erlang exceptions,
    # the cross marks of JavaScript runners and linters
    (
        re.compile(
            r"^\s*not ok \d+|Failed asserting|XCTAssert\w* failed|" + XCTEST_FAILED + "|"
            r"^\s*\*\* \(\w+\) |"
            r"^\s*[\u2716\u2717\u2718\u274c\u00d7]\s|\s[\u2716\u2717\u2718]\s|\u274c\s"
        ),
        2.6,
        False,
    ),
    # the failure headers of the test runners: RSpec, minitest (and Rails' runner), jest, CTest,
    # PHPUnit, ExUnit, clojure.test, Rust, Perl's Test::More, testthat, busted, Pester, xUnit,
    # NUnit/dotnet test, pytest's failure section; MSBuild/NuGet/C# and tsc diagnostics
    (
        re.compile(
            r"^\s*Failure/Error:|^\s*\d+\) (?:Failure|Error):|^(?:Failure|Error):$|"
            r"^\s*\u25cf .+ \u203a |"
            r"\bTest +#\d+: \S+ \.*\*+(?:Failed|Exception|Timeout)|"
            r"^\s*\d+\) test .+ \([\w.]+\)$|^(?:FAIL|ERROR) in \(|"
            r"thread '.+'(?: \(\d+\))? panicked at|^#\s+Failed test\b|"
            r"^\W*\d+\. (?:Failure|Error)\b.*:|" + BLOCK_HEADER + r"|^\s*\[-\] |\[FAIL\]|"
            r"^\s*Failed [\w.]+(?: \[[\d.]+ m?s\])?$|^_{3,} .+ _{3,}$|\berror [A-Z]{2,4}\d{3,5}:|"
            r"^\d+\) [\w\\]+::\w+|^\S+\.\w+ ?\(\d+,\d+\):\s|"
            # a test's line ending in its verdict (tasty's, minitest-reporters'), its details
            # under it; minitest's progress reporter; Python's doctest; a mocha or Jasmine,
            # minitest, luassert or Nimble expectation
            r"^\s+\S.*:\s+(?:FAIL|ERROR)$|^\s+\S.*\s(?:FAIL|ERROR) \([\d.]+m?s\)$|"
            r"^\s*(?:FAIL|ERROR) \S+#\S+|" + DOCTEST_FAILED + "|"
            # busted's gtest verdict (its message above it), Neovim's handler's (below it)
            r"^\[  (?:FAILED|ERROR)   ?\] \S+ @ \d+: .+ \([\d.]+ m?s\)$|"
            r"^\[ RUN      \] .+: [\d.]+ ms (?:FAIL|ERR)$|"
            r"(?:^\s*|:\d+: )Expected .+ (?:not )?to (?:be|equal|eq|include|"
            r"contain|match|have|respond|throw|raise)\b"
        ),
        2.6,
        False,
    ),
    (re.compile(GTEST_FAILURE), 2.8, False),
    # pre-commit's failed hook ("flake8.......Failed"), its id and findings under it
    (re.compile(r"^\S.*\.{4,}\s?Failed$"), 2.6, False),
    # an Erlang error term (EUnit, Common Test, a crash): {badmatch,...}, {assertEqual,...}
    (
        re.compile(
            r"\{(?:badmatch|function_clause|case_clause|if_clause|try_clause|badarg|badarith|"
            r"badarity|badfun|undef|assert\w*|noproc|timeout),"
        ),
        2.6,
        False,
    ),
    # diagnostics with a file and a line, in the shapes the build tools print them: javac
    # under Maven, sbt and scalac, kotlinc, the Go compiler (no "error" word), TeX's "! ",
    # CMake, a shell script's own error line; Bundler's failed install; a
    # Ruby exception's "(NameError)"; R's "Error in f(x) :"; Liquid's exceptions; where a
    # PowerShell error record was raised; a linter's finding with a message only (standard);
    # the Erlang compiler's diagnostic, a Lua error, CocoaPods' lint finding, MiMa's problem
    (
        re.compile(
            r"^\[ERROR\] \S+\.\w+:\[\d+,\d+\] |^\[error\] \S+\.\w+:\d+(?::\d+)?: |"
            r"^e: \S+\.kts?: |^\S+\.go:\d+(?::\d+)?: |" + TEX_ERROR + r"|^CMake Error\b|"
            r"^\S+: line \d+: .+: (?:command not found|No such file or directory|Permission "
            r"denied)$|^An error occurred while installing|"
            r"\((?:[A-Z]\w*::)*[A-Z]\w*(?:Error|Exception)\)$|^Error in .+ : |"
            r"Liquid (?:Exception|syntax error)|^Dubious, test returned|"
            r"^At (?:line:\d+|\S.*:\d+) char:\d+$|"  # a PowerShell error record's place
            r"^\s*\S+\.\w{1,5}:\d+:\d+: [A-Z][a-z]|"  # a linter's path:line:col: Message
            r"^\S+\.[eh]rl:\d+(?::\d+)?: (?!Warning)|"  # erlc's (no "error" word either)
            r"^\S+\.lua:\d+: (?!in )|"  # a Lua error raised with its place
            r"^\s*- ERROR \| |"  # CocoaPods' lint finding
            # a MiMa (binary compatibility) problem
            r"does not have a correspondent in (?:current|new|other) version|"
            r"(?:is different|is present only) in (?:current|new|other) version|"
            # Checkstyle's violation under Maven; Sphinx -W
            r"^\[(?:ERROR|WARN)\] \S+\.\w+:\d+(?::\d+)?: .+ \[\w+\]$|^Warning, treated as error:|"
            r"^\s+Line\s{2,}\S+\.php\s*$"  # the head of PHPStan's table of a file's errors
        ),
        2.6,
        False,
    ),
    (_lc(MAVEN_AT_INFO), 2.6, True),
    (_lc(r"^fatal:|^FATAL:|\bpanic:"), 2.8, True),
    # a sanitizer's or valgrind's report of a memory error
    (
        re.compile(
            r"^==\d+==\s?ERROR: \w+Sanitizer|\bruntime error: |^==\d+== (?:Invalid (?:read|write|"
            r"free)|Conditional jump|Mismatched free)"
        ),
        3.0,
        False,
    ),
    (
        _lc(
            r"no space left on device|out of memory|oomkilled|\bkilled\s*$|exit code 137|"
            r"java heap space|outofmemoryerror|gc overhead limit exceeded"
        ),
        3.0,
        True,
    ),
    (
        _lc(
            r"cannot find symbol|undefined reference|\bundefined: |"
            r"unresolved (?:reference|import)|cannot access|could not resolve|"
            r"unable to resolve|cannot find module|no module named|module '[\w.]+' not found"
        ),
        2.8,
        True,
    ),
    (
        _lc(
            r"would reformat|would be reformatted|not (?:properly )?formatted|needs? formatting|"
            r"^Found \d+ errors?\b|imported but unused|"
            r"code style issues|incorrectly sorted|" + NOT_COMMITTED
        ),
        2.8,
        True,
    ),
    (
        _lc(
            r"COMPILATION ERROR|Compilation failure|"
            r"There are test failures"
        ),
        2.6,
        True,
    ),
    (
        _lc(
            r"AssertionError|assert(?:ion)? failed|expected:? .{0,80} but (?:was|got|found)|"
            r"Expected: .*[^,\s]\s*$"
        ),
        2.6,
        True,
    ),
    (
        _lc(
            r"connection (?:reset|refused|timed out|aborted)|reset by peer|"
            r"temporary failure in name resolution|could not resolve host|"
            r"\b(?:429|50[0234])\b.{0,30}(?:error|unavailable|gateway|too many|server)|"
            r"rate limit"
        ),
        2.8,
        True,
    ),
    (
        _lc(
            r"\bis (?:empty|not set)\b|not accessible by integration|permission denied|"
            r"flag provided but not defined|unrecognized arguments?:|no such option|"
            r"invalid workflow|deprecated version|unable to resolve action|not supplied"
        ),
        2.8,
        True,
    ),
    (
        _lc(
            r"lost communication|shutdown signal|exceeded the maximum execution time|"
            r"operation was cancell?ed|timed out after"
        ),
        2.8,
        True,
    ),
    (
        _lc(
            r"unsafe repository|dubious ownership|cannot start any token|wrong version|"
            r"compiled by a more recent version"
        ),
        2.8,
        True,
    ),
    (
        _lc(
            r"Tests run: \d+, Failures: [1-9]|Tests run: \d+, Failures: \d+, Errors: [1-9]|"
            r"^Tests:\s+\d+ failed|test result: FAILED"
        ),
        2.6,
        True,
    ),
]
MEDIUM: list[tuple[re.Pattern[str], float, bool]] = [
    # a compiler's warning (an error under -Werror) and the words of failed checks
    (re.compile(r"^\S+?:\d+:\d+:\s+warning\b", re.I), 1.6, False),
    (_lc(r"\berror\b|\berrors\b"), 1.6, True),
    (_lc(r"\bfail(?:ed|ure|s|ing)?\b"), 1.5, True),
    (_lc(r"exception|traceback"), 1.5, True),
    (
        _lc(
            r"denied|forbidden|unauthorized|not found|no such file|cannot|can't|could not|"
            r"couldn't|unable to|timed out|refused|aborted|invalid|missing|unexpected|"
            r"incompatible|conflict|undefined|unsupported|illegal|unrecognized|not recognized|"
            r"unknown (?:option|command|switch|flag|argument)|mismatch|violation|exceeded|"
            r"not (?:installed|available|allowed|permitted)|does(?: not|n't) (?:exist|match)|"
            r"\bno \w+ found|is redundant|\bunused\b"
        ),
        1.0,
        True,
    ),
]
NEGATIVE: list[tuple[re.Pattern[str], float, bool]] = [
    (
        _lc(
            # (not a TAP failure whose test is named so: "not ok 6 no errors")
            r"^(?!\s*not ok \d).*(?:\b0 (?:errors?|failures?|failed)\b|Failures: 0, Errors: 0|"
            r"\berrors?: 0\b|\bfailed: 0\b|no errors)"
        ),
        2.5,
        True,
    ),
    (
        _lc(
            r"(?:^|\s)-Werror\b(?!=)|error[-_]?prone|errorprone|"
            r"\berror\.(?:log|html|txt|java|py|js|ts)|\bon-?error|\berrors?\.[a-z]{2,4}\b|"
            r"/errors?/|ignore[_-]?errors?|fail[-_]?fast|"
            r"failsafe|continue-on-error"
        ),
        1.8,
        True,
    ),
    # (sbt prints ScalaTest's failures at [info], Maven PMD's and Enforcer's at INFO and WARNING)
    (
        _lc(
            r"^\s*(?:\[(?:INFO|DEBUG|WARNING|WARN)\]|INFO\b|DEBUG\b)"
            r"(?!.*(?: \*\*\* failed \*\*\*$|" + MAVEN_AT_INFO + "))"
        ),
        1.2,
        True,
    ),
    (
        _lc(
            r"^\s*(?:- )?(?:Downloading|Downloaded|Download|Progress|Collecting|Requirement already"
            r"|Using cached|Installing|Fetching|Get:\d|Unpacking|Setting up|Selecting)"
        ),
        2.0,
        True,
    ),
    (
        _lc(
            r"To see the full stack trace of the errors|Re-run Maven using the|"
            r"For more information about the errors|^\s*(?:\[ERROR\]\s*)?\[Help \d\]|"
            r"After correcting the problems|mvn <\w+> -rf"
        ),
        1.2,
        True,
    ),
    # a check that passed: a runner's PASS or ok, a tick
    (
        re.compile(
            r"\bPASS(?:ED)?\b|\bok\b\s+\S+\s+[\d.]+s$|\bSUCCESS\b|^\s*[\u2713\u2714\u221a]\s"
        ),
        1.5,
        False,
    ),
    (_lc(r"deprecat"), 0.6, True),
    (
        _lc(
            r"see the (?:report|log|full report)|for the individual test results|"
            r"There were failing tests|see above|check the logs?\b"
        ),
        1.5,
        True,
    ),
]

#: lines that only restate that something failed (a runner's summary, a tool's exit line):
#: the cause is above them, so they never outrank a line that says it
SUMMARY = re.compile(
    r"^=+ .*\b\d+ (?:failed|errors?)\b.*=+$"  # pytest's last line
    r"|aborting due to (?:\d+ )?previous errors?|^error: could not compile|could not compile"
    r"|^error: build failed|compilation failed\s*$|\bCompilation failed$"
    r"|\bexited with (?:code|status)?\s*:?\s*\d+\.?\s*$|exit status \d+\s*$"
    r"|returned (?:a )?non-zero exit|^\S*\s*'[\w:.-]+' errored after"
    r"|\*\*\* FAILED test case \d+ of \d+|TEST COMPLETE, .*\bfailed\b"
    r"|^\[error\] (?:Total time:|Failed: Total \d+|Failed tests:|Error: Total \d+)"
    r"|^(?:\[error\]\s*)?(?:\w+|\d+) errors? found$|\bfailed \d+ times\.?$"
    r"|^npm ERR!\s*$|^npm ERR! .*_logs/.*\.log\s*$"
    r"|^npm ERR! (?:code ELIFECYCLE|errno|Exit status|Failed at the|This is probably not|"
    r"A complete log|Test failed|Tell the author|You can get|Make sure you have|spawn|"
    r"[\w@./-]+ [\w:.-]+: `)"
    r"|\*\* (?:TEST|BUILD|ARCHIVE) FAILED \*\*|^make(?:\[\d+\])?: \*\*\* (?:\[|Waiting)"
    r"|recipe for target .* failed"
    r"|TestsFailedException|Tests unsuccessful|^FAILURE: Build failed with an exception"
    r"|Command failed with exit code|^error Command failed|script returned exit code"
    r"|^\S+::\S+ (?:FAILED|ERROR)(?:\s+\[\s*\d+%\])?$"  # pytest -v: the details come later
    r"|^Tests?:\s+\d+ failed|^\d+ (?:examples?|tests?|specs?), \d+ failures?"
    r"|^Test Suites:\s+\d+ failed|^Tests: \d+, Assertions: \d+"
    r"|^FAILED \((?:failures|errors)=|test result: FAILED|^FAIL\s*$|^FAIL\t\S+"
    # a runner's "FAILED <suite path>", as go's "FAIL\tpkg" (upper case and a path: not the
    # header "Failed Ns.Class.Test" of dotnet test)
    r"|(?-i:^FAILED\s+[\w.\\-]*/[\w./\\-]*\s*$)"
    r"|^(?:FAILED|ERROR) \S+::\S+ - "  # pytest's short summary: its failure sections say why
    r"|^FAIL\s+\S+\.[cm]?[jt]sx?\s*$"  # jest's file result: its \u25cf blocks say why
    # cargo test's progress lines and last words: each test's "---- x stdout ----" says why
    r"|^test \S+ \.\.\. FAILED$|^error: test failed, to rerun pass "
    r"|^\d+ success(?:es)? / \d+ failures? / \d+ errors? / "  # busted's count
    # CTest's summary: the test's own output, under its "***Failed" line, says why
    r"|^The following tests FAILED:|^\s*\d+ - \S+ \((?:Failed|SEGFAULT|Timeout|Not Run|"
    r"Subprocess aborted|Exception)\)$|^Errors while running CTest|^\d+% tests passed, \d+ tests"
    # GoogleTest's list of the failed tests: each test's "Failure" above says why
    r"|^\[  FAILED  \] (?:\d+ tests?, listed below:|[\w/.]+(?:, where .*)?)$"
    r"|^\s*\d+ (?:FAILED TESTS?|ERRORS?)$"
    r"|^\[  ERROR   \] \d+ errors?, listed below:$"  # busted's gtest handler's
    # prove's report and rebar3's last words: the test's own output above says why
    r"|^Result: FAIL$|^\s*Non-zero exit status: \d+$|^\s*Parse errors: |^\S+\s+\(Wstat: \d+"
    r"|^===> Error running tests$"
    # a verdict in a table of results ("wallet.py | \u2716 Failed | 94 s"): the run's own
    # output says why
    r"|\|\s*(?:[\u2716\u2717\u2718\u274c]\s*)?(?:Failed|FAILED|Failure|Error)\s*\|"
    # xcodebuild's, CocoaPods' and MiMa's last words: the lines above say why
    r"|Binary compatibility check failed"
    r"|xcodebuild: Returned an unsuccessful exit code|^\[!\] .+ did not pass validation"
    r"|^The following build commands failed:|^Testing failed:$|Error Domain=IDE\w+ErrorDomain"
    # Gradle's count, its verdict on a task, its "what went wrong" with a task and its own
    # exceptions under --stacktrace: the task's output above says why
    r"|^\d+ tests completed, \d+ failed|^> Task \S+ FAILED$|^\* Exception is:$"
    r"|^(?:Caused by: )?org\.gradle\.[\w.$]+(?:Exception|Error): |Execution failed for task"
    # XCTest's count, cpplint's, PHPStan's
    r"|^\s*Executed \d+ tests?, with [1-9]\d* failures?|^Total errors found: \d+$"
    r"|^\s*\[ERROR\] Found \d+ errors?\s*$"
    # tasty's count and cabal's verdict on a test suite
    r"|^\d+ out of \d+ tests failed|^Test suite \S+: FAIL$"
    r"|^npm (?:ERR!|error) {2,}\S"  # npm's usage text after a usage error
    r"|^Found \d+ errors?\b|^\d+ files? inspected, \d+ offen[cs]es? detected"  # counts
    # pip's report of a build step that failed: the step's own output, inside it, says why
    r"|error: (?:subprocess-exited-with-error|metadata-generation-failed)"
    r"|did not run successfully\.?$|^note: This error originates from a subprocess"
    r"|^npm ERR! Test failed|^ERROR: InvocationError|commands failed$"
    r"|^\[ERROR\] (?:Tests run:|Failures:|Errors:)\s*$"
    # Maven's last words on a surefire run: the test output above says which and why
    r"|Failed to execute goal \S*(?:surefire|failsafe)\S* |Failed to execute goal .*: "
    r"Compilation failure"
    r"|: There are test failures\.?$|for the individual test results\.?$"
    r"|There (?:was|were) \d+ (?:failures?|errors?):?$|^Failed examples:|^Failures:\s*$"
    r"|Process completed with exit code|Your build exited with|(?<!\d)\d+ failing$",
    re.I,
)
#: a unified diff (a formatter's check, generated code out of date): a file's header, a hunk's
#: header, a line the hunk keeps, adds or removes
DIFF_FILE = re.compile(r"^(?:diff |--- \S|\+\+\+ \S|index [0-9a-f]+\.\.)")
DIFF_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
DIFF_LINE = re.compile(r"^[+-](?![+-]{2} )")
DIFF_BODY = re.compile(r"^(?:[ +-]|$)")

#: the most a summary line scores
SUMMARY_CAP = 1.8

FINAL_MARKER = re.compile(
    r"##\[error\]Process completed with exit code [1-9]"
    r"|^Build step '.+' marked build as failure"
    r"|^ERROR: Job failed|^Finished: (?:FAILURE|ABORTED|UNSTABLE)"
    r"|^ERROR: script returned exit code"
    r"|^make(?:\[\d+\])?: \*\*\* .*Error \d+|^Error: Process completed with exit code [1-9]"
    r"|^\[INFO\] BUILD FAILURE|^BUILD FAILURE|^BUILD FAILED\b"
    r'|^The command ".*" (?:failed and )?exited with [1-9]'
)
# markers that close a step's output (the lines just before them are the step's last words)
STEP_END_MARKER = re.compile(
    r"##\[error\]Process completed with exit code [1-9]"
    r"|^Build step '.+' marked build as failure"
    r"|^ERROR: Job failed|^ERROR: script returned exit code"
    r"|^Error: Process completed with exit code"
    r'|^The command ".*" (?:failed and )?exited with [1-9]'
)

CONTINUATION = re.compile(
    r"^(?:\s+\S|\s*at\s|\s*Caused by\b|\s*\.\.\. \d+ (?:more|common)|\[ERROR\]\s|E\s"
    r"|\s*\||\s*-->|\s*\^|\s*File \"|\s*=\s|(?:[\w$]+\.)*[A-Z]\w*(?:Error|Exception)\b"
    r"|During handling of the above|The above exception|stdout:|stderr:|\s*symbol:"
    r"|\s*location:|\s*(?:found|required):|\s*\+\s|\s*-\s"
    r"|#\s{2,}\S)"  # TAP's diagnostics under a failed test ("#   at t/x.t line 5.")
)
MAX_LINE_SCORE = 4.0


@functools.lru_cache(maxsize=8192)
def score_line(text: str) -> float:
    """The score of one cleaned log line (0 when it says nothing about a failure)."""
    if not text or len(text) < 3:
        return 0.0
    low = text.lower()
    best = 0.0
    hits = 0
    for rx, weight, lower in STRONG:
        if rx.search(low if lower else text):
            hits += 1
            best = max(best, weight)
    if not best:
        for rx, weight, lower in MEDIUM:
            if rx.search(low if lower else text):
                best = max(best, weight)
                break
    if not best:
        return 0.0
    score = best + 0.2 * max(0, min(hits, 4) - 1)
    score -= sum(p for rx, p, lower in NEGATIVE if rx.search(low if lower else text))
    if SUMMARY.search(text):
        score = min(score, SUMMARY_CAP)
    return max(0.0, min(score, MAX_LINE_SCORE))


def is_continuation(text: str) -> bool:
    """A line that continues the message above it (stack frame, detail, caret, ...)."""
    return bool(text) and bool(CONTINUATION.match(text))

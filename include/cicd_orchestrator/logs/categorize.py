"""The category of a failure, from what a build engineer reads: the failed command and the
lines that say why it failed.

One classifier for every caller (``cicd analyze``, the sessions' analysis, the reports):
:func:`categorize` weighs

- the pattern library's match, when a known cause matched: it decides (the repair recipe
  that comes with it is made for its category), unless the matched line is only a tool's
  summary (``npm ERR! Test failed``);
- the shapes of the toolchains' output in the evidence lines: a compiler's diagnostic, a test
  runner's failure, a linter's offence, a network or machine failure, a CI set-up mistake,
  a deployment tool, a retried test (:data:`LINE_RULES`);
- the failed command or step and the job's name: the tool it runs (``rubocop``, ``jest``,
  ``cargo build``, ``dpl``...) or the word it uses (``lint``, ``test``, ``deploy``)
  (:data:`NAME_RULES`);
- what a shell's exit status says of itself (127: not found, 126: not executable, 124: timed
  out, 137: killed) (:data:`EXIT_STATUS`).

A line that says nothing against the build does not vote (:data:`NOT_EVIDENCE`: a check that
passed, a skipped step, the CI runner's own set-up); a warning votes little unless warnings
are errors. A known cause decides only where the job failed (the first excerpt), and a link
checker's network errors are its findings, dead links.

Each rule is a general rule of a toolchain, never the text of one log. The evidence of the
first excerpt counts most. The verdict carries a confidence (the winner's share of the
weight) and the evidence behind it; ``unknown`` only when nothing at all was found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.logs.scoring import (
    CPPLINT,
    DIFF_HUNK,
    DIFF_LINE,
    DOCTEST_FAILED,
    FINAL_MARKER,
    NOT_COMMITTED,
    SUMMARY,
    XCTEST_FAILED,
)

C = FailureCategory
Rule = tuple[FailureCategory, re.Pattern[str], float]


def _rx(pattern: str, flags: int = re.I) -> re.Pattern[str]:
    return re.compile(pattern, flags)


#: a warning, which fails a build only when warnings are errors
WARNING = _rx(r"^\s*warning\b|\bwarning: |\[-W[\w-]+\]|^\S+:\d+(?::\d+)?:\s+warning\b")

#: the shapes of output lines, by what they say about the failure
LINE_RULES: list[Rule] = [
    # ---------------------------------------------------------------- infrastructure
    (
        C.INFRASTRUCTURE,
        _rx(
            r"connection (?:reset|refused|timed out|aborted|closed)|reset by peer|"
            r"could not resolve host|temporary failure in name resolution|name or service not "
            r"known|network is unreachable|no route to host|\bETIMEDOUT\b|\bECONNRESET\b|"
            r"\bECONNREFUSED\b|\bEAI_AGAIN\b|socket hang up|read timed out|handshake|"
            r"\bprotocol_version\b|(?<![\w/])ssl(?:error|_error)?\b(?![/.]\w).{0,40}(?:failed|error)|"
            r"\b50[0234]\b.{0,30}(?:error|unavailable|gateway|server)|service unavailable|"
            r"bad gateway|remote end hung up|empty reply from server|early eof|hash sum mismatch|"
            r"failed to (?:download|fetch|connect)|unable to (?:download|connect|access 'https?:)|"
            r"too many requests|network timeout|could not reach host|\bfetch_error\b|"
            r"operation timed out|"
            r"curl: \((?:6|7|28|35|52|56)\)|insufficient memory|malloc.{0,20}failed|"
            r"^memoryerror\b|"
            r"rate limit (?:exceeded|reached)|could not (?:download|connect|fetch)|"
            r"could(?: not|n't) (?:create|establish|open) (?:an? )?(?:\w+ )?connection|"
            r"(?:tls|ssl|tcp|https?) connection.{0,60}failed|connect(?:ion)? timeout"
        ),
        2.0,
    ),
    (
        C.INFRASTRUCTURE,
        _rx(
            r"no output has been received in the last|exceeded the maximum (?:time|log|execution)|"
            r"out of memory|outofmemoryerror|java heap space|cannot allocate memory|"
            r"no space left on device|"
            r"\bkilled\b|oomkilled|disconnected|lost communication|"
            r"shutdown signal|job was (?:cancell?ed|aborted)|emulator|simulator.{0,40}(?:fail|"
            r"boot|timed out)|runner.{0,20}(?:lost|offline)"
        ),
        2.0,
    ),
    # ---------------------------------------------------------------- flaky
    (
        C.FLAKY,
        _rx(
            r"\bflak(?:y|iness)\b|intermittent|passed on retry|"
            r"\bre-?run(?:ning)? (?:the )?(?:flaky|failed) tests?"
        ),
        2.5,
    ),
    # ---------------------------------------------------------------- configuration
    (
        C.CONFIGURATION,
        _rx(
            r"command not found|is not recognized as an internal or external command|"
            r"line \d+: \S+: permission denied|executable file not found in \$path|"
            r"the program '[^']+' is currently not installed|non-parseable pom|malformed pom|"
            r"unable to locate package|has no installation candidate|no pom in this directory|"
            r"your ruby version is .{0,40}but your gemfile specified|no main manifest attribute|"
            r"can't find header files for ruby|no tests matching pattern|was not found in the "
            r"path|\d+(?:\.\d+)+ or (?:higher|newer|later) is required|"
            r"no rule to make target '[^']+'\.\s+stop|invalid package\.json|"
            r"can only install with an existing "
            r"(?:package-lock|lockfile|npm-shrinkwrap)|missing required env(?:ironment)? variable|"
            r"\bejsonparse\b|"
            r"failed to (?:read|parse|load) (?:json |yaml |config(?:uration)? )?(?:file|config)|"
            r"error reading file \S+\.(?:config|json|ya?ml|toml|xml)\b|"
            r"(?:^|: )line \d+: .*: no such file or directory|\bcd: .*no such file|"
            r"can't open file|no such file or directory.{0,20}$|unknown (?:option|command|switch|"
            r"flag|argument)|illegal (?:option|switch)|unrecognized (?:option|argument|command)|"
            r"invalid option|flag provided but not defined|^usage: |missing script|"
            r"no (?:rakefile|makefile|gemfile|package\.json|pom\.xml|build\.gradle|build\.sbt|"
            r"cargo\.toml|setup\.py|composer\.json|mix\.exs) found|"
            r"task .{0,40}(?:never defined|not found|does not exist|is not defined)|"
            r"don't know how to build task|"
            r"is not set\b|(?:variable|secret|token|key|env\w*)\b.{0,40}is not defined\b|"
            r"unable to find a destination matching|not supplied|cannot be (?:null|empty)|secret|"
            r"permission denied \(publickey\)|remote branch .* not found|couldn't find remote ref|"
            r"did not match any file|unsupported (?:version|engine|platform)|"
            r"(?:requires|needs) (?:python|php|ruby|node|java|jdk|go|rust|perl|maven|gradle|"
            r"cmake|npm|bundler|xcode|dotnet|a newer|at least)|require\w*version failed|"
            r"not in the allowed (?:version )?range|engine \"?\w+\"? is incompatible|"
            r"(?:version|release) .{0,40}(?:is not|"
            r"isn't|not) (?:available|installed|supported|found)|not a valid|invalid workflow|"
            r"error while loading shared libraries|wrong (?:version|architecture)"
        ),
        1.8,
    ),
    # a set-up mistake no other reading explains away: a script, a flag, an option
    (
        C.CONFIGURATION,
        _rx(
            r"missing script|flag provided but not defined|unrecognized arguments?:|"
            r"no such option"
        ),
        2.6,
    ),
    # ---------------------------------------------------------------- deployment
    (
        C.DEPLOYMENT,
        _rx(
            r"\bdeploy(?:ing|ment)?\b(?!\.\w).{0,60}(?:fail|error)|^\W*deploying to\b|"
            r"failed to (?:deploy|publish|push|"
            r"upload)|\bdpl\b|skipping a deployment|publish(?:ing)? failed|"
            r"npm ERR! (?:publish|code E403)|twine upload|gem push|cargo publish|docker push"
        ),
        2.0,
    ),
    # ---------------------------------------------------------------- quality
    # a linter's finding: path:line[:col]: CODE (E501, MD034, SC2086, TLDR004, W0611), or
    # cpplint's: path:line: message [category] [confidence]
    (
        C.QUALITY,
        _rx(r"^\S+?:\s?\d+(?::\d+)?:?\s+[A-Z]{1,4}\d{2,5}\b|" + CPPLINT, 0),
        2.4,
    ),
    # a linter's finding: line:col, message, (rule-name) (stylelint, eslint's stylish); or
    # SEVERITY: path:line:col rule-name (tslint); a unified diff's hunk (a formatter's check)
    (
        C.QUALITY,
        _rx(
            r"^\s*\d+:\d+\s+.*\((?:[\w@/]+-)+\w+\)\s*$|"
            r"^(?:ERROR|WARNING): \S+:\d+:\d+ [a-z]+(?:-[a-z]+)+ |"
            r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@",
            0,
        ),
        2.0,
    ),
    (
        C.QUALITY,
        _rx(
            r"would (?:reformat|be reformatted)|needs? (?:re)?format|is not (?:properly )?"
            r"formatted|not formatted|code style|coding standard|\boffen[cs]es?\b|"
            r"(?<!\d)\d+ problems? \(\d+ errors?|"
            r"^\S+:\d+:\d+: [CWERF]: |^\S+:\d+:\d+: [EWFCNDI]\d{3}\b|"
            r"^\s*\d+:\d+\s+(?:error|warning|✖)\s|^diff in |lint(?:er|ing)? (?:error|fail)|"
            r"\blint\b|imported but unused|unused (?:import|variable|argument)|"
            r"is (?:redundant|never used|not (?:being )?used)|spelling|misspell|"
            r"\btypos? (?:found|detected)|broken links?|"
            r"dead links?|\b(?:404|301|302|522)\b.{0,8}https?://|trailing whitespace|"
            r"line too long|missing (?:magic comment|docstring|header|license|copyright|"
            r"documentation|include guard)|undocumented|coverage .{0,40}(?:below|less than|"
            r"threshold|decreased|fail)|binary compatibility|mima|incorrectly sorted|"
            # what the generated files' check says (NOT_COMMITTED), and broader words of it
            r"uncommitted|please apply\b|git diff --exit-code|not (?:up to date|in sync)|"
            r"out of date|"
            r"please run \W?\w*\s?(?:fmt|format|lint|gen\w*)\b|"
            r"size limit|(?:bundle|size) budget|" + NOT_COMMITTED + "|"
            r"overfull \\[hv]box|"
            r"line (?:is )?longer than \d+|there were undefined (?:references|citations)|"
            r"@param \w+ not found|no @(?:param|return|throws) for|\bdoclint\b|malformed html|"
            r"minimum (?:line |branch )?coverage|fail[-_]under|"
            r"\b(?:words?|entries|items|lines|keys|names|imports|links) (?:are |is )?not "
            r"(?:in (?:\w+ )?order|(?:alphabetically )?sorted)|duplicate links?\b|"
            r"does not match (?:the )?(?:expected |required )?format"
        ),
        1.8,
    ),
    (
        C.QUALITY,
        _rx(
            r"\b(?:rubocop|eslint|tslint|jshint|jscs|stylelint|sass-lint|scss-lint|csslint|"
            r"htmlhint|markdownlint|remark-lint|prettier|flake8|pylint|pycodestyle|pep8|"
            r"pydocstyle|black|isort|yapf|mypy|bandit|checkstyle|pmd|spotbugs|findbugs|"
            r"scalastyle|scalafmt|scalafix|ktlint|detekt|gofmt|goimports|golint|go vet|"
            r"staticcheck|golangci-lint|clippy|rustfmt|shellcheck|vint|hlint|credo|swiftlint|"
            r"swiftformat|clang-format|clang-tidy|cpplint|cppcheck|perlcritic|perltidy|phpcs|"
            r"php-cs-fixer|phpstan|psalm|phpmd|lintr|codespell|editorconfig|commitlint|"
            r"awesome_bot|html-?proofer|linkchecker|markdown-link-check|vale|luacheck|"
            r"elm-format|dartfmt|dart analyze|xmllint|yamllint|jsonlint|hadolint|dialyzer|xref)"
            r"\b(?![.-]\w)|has no local return|will never return|breaks the contract|"
            r"invalid type specification|calls undefined function"
        ),
        1.5,
    ),
    # ---------------------------------------------------------------- test
    (
        C.TEST,
        _rx(
            r"assert(?:ion)?(?:error| failed|\w*\b.{0,20}failed)|failed asserting|xctassert|"
            # "expected X to equal Y" (not "expected Calc to define ... or for it to be")
            r"expected:? (?:(?!\bto\b).){0,80}(?:but (?:was|got|found)|\bto (?:equal|be|have|"
            r"contain|match|include|throw))|\bexpected\b.{0,40}\b(?:got|actual|received)\b|"
            r"^\s*(?:actual|expected|received)\s*:|^\s*not ok \d+|"
            r"\bfailures?:\s*[1-9]|(?<!\()\b[1-9]\d* (?:failing|failures?|failed)\b|"
            r"tests? (?:failed|failures)|test result: FAILED|test suite .{0,40}fail|"
            r"<<< (?:FAILURE|ERROR)!|errors?: [1-9]\d*, failures|there (?:was|were) \d+ "
            r"(?:failure|error)|\bspec\b.{0,40}fail|"
            # (not pip's "\u00d7 Building wheel for x did not run successfully")
            r"^\s*[\u2717\u2716\u00d7]\s(?!.*did not run successfully)|"
            r"\bexamples?, [1-9]\d* failures?|"
            r"unfulfilled expectation|"
            r"(?:uncaught|unhandled) exception|pending.{0,20}fail|\bfailed on line \d+|"
            r"^\s*failure/error:|"
            r"running the tests in .{0,80} failed|^#\s+failed test\b|"
            r"^(?:ERROR|FAIL): test\w* \([\w.]+\)|^E {3,}\S|"
            r"forked vm terminated without (?:properly )?saying goodbye|\b\w+sanitizer: |"
            r"^==\d+== (?:invalid (?:read|write|free)|conditional jump|mismatched free)|"
            r"looks like you failed \d+ tests?|" + XCTEST_FAILED + "|" + DOCTEST_FAILED
        ),
        1.6,
    ),
    (
        C.TEST,
        _rx(
            r"^--- FAIL|^FAIL[: \t](?!.*\[build failed\])|\bFAILED\b|\[FAIL\]|\sFAIL$|"
            r"\s(?:FAIL|ERROR) \([\d.]+m?s\)$",
            0,
        ),
        1.6,
    ),  # upper case only
    # ---------------------------------------------------------------- build
    (
        C.BUILD,
        _rx(
            r"^\S+?:\d+(?::\d+)?:?\s+(?:fatal )?error\b|\*\* (?:TEST )?BUILD FAILED \*\*|"
            r"^\(\d+ failures?\)$|"  # xcodebuild's count of the build commands that failed
            r"\berror(?:\[E\d+\]| (?:CS|TS|C|LNK)\d+\b)|"
            r"^\[error\] \S+\.\w+:\d+(?::\d+)?: |^\[ERROR\] \S+\.\w+:\[\d+,\d+\] |"
            r"^e: \S+\.kts?: |^\S+\.\w+\(\d+,\d+\): error|"
            r"cannot find symbol|undefined reference to\b|unresolved (?:external|import|reference)|"
            r"cannot find (?:package|name|type)|compil(?:e|ation) "
            r"(?:error|failed|failure)|could not compile|failed to compile|build failed|"
            r"linker|ld returned|collect2|undefined symbol|not in scope|"
            r"no (?:matching|such) (?:distribution|version|package|member|method|function)|"
            r"could not (?:find|resolve) (?:a )?(?:version|dependenc|gem|artifact|package)|"
            r"could not resolve dependencies|version solving failed|unsatisfiable|"
            r"conflicting (?:dependencies|requirements)|requirements? could not be resolved|"
            r"\bnpm ERR! code E(?:RESOLVE|TARGET|404|NOTARGET)|\bcannot (?:be )?resolve|"
            r"unable to resolve|package .{0,60}(?:not found|is unavailable|doesn't exist)|"
            r"bundler could not find|gem::(?:missingspec|loaderror)|failed to build|"
            r"error: (?:aborting|could not compile)|makefile.{0,20}error|no rule to make target|"
            r"has no member|is not a member of|does not (?:exist|name a type)|not found: "
            r"(?:type|value|object)|warnings? (?:being )?treated as errors|-werror|"
            r"deprecated.{0,40}(?:removed|error)|incompatible types?|cannot convert|"
            r"build input file cannot be found|^\S+\.[eh]rl:\d+(?::\d+)?: (?!warning)|"
            r"^! (?:LaTeX Error|Undefined control sequence|"
            r"Missing|Emergency stop|Package \w+ Error|Paragraph ended|Extra|Too many)|"
            r"'\w+' expected (?:\(to close|near)|module '[\w.]+' not found|\[build failed\]|"
            r"\u274c\s+\S+:\d+:\d+: |"
            r"\bredeclared\b|already declared|redefinition of|"
            r"(?:imported|declared) and not used|no required module provides package|"
            r"cannot find module providing package|module lookup disabled|unknown revision|"
            r"installation (?:of package .{0,60})?(?:failed|had "
            r"non-zero exit status)|the requested package .{0,80}(?:could not be found|exists as)|"
            r"no version of .{0,60} is available|building wheel for .{0,60}did not run "
            r"successfully|failed building wheel|failed to build installable wheels"
        ),
        1.6,
    ),
    # the Go compiler's diagnostic has no "error" word, and go vet's findings look the same:
    # the command's name decides between them
    (C.BUILD, _rx(r"^\S+\.go:\d+(?::\d+)?: (?!warning)"), 0.6),
    # code that does not load before any test runs (rspec, Lua, Perl): the failure under it
    # ("Failure/Error: require ...", "Failed test 'use X'") is not a test's, and the runner's
    # name does not make it one
    (
        C.BUILD,
        _rx(
            r"an error occurred while loading|error loading module|can't locate \S+ in @inc|"
            r"cannot load such file"
        ),
        2.6,
    ),
    # what an interpreted language raises when it loads code: a build problem when the
    # build runs it, often a test's own failure when the tests do (the name then decides)
    (
        C.BUILD,
        _rx(
            r"cannot find module|no module named|modulenotfounderror|importerror|syntax ?error|"
            r"parse ?error|unexpected token|type ?error|referenceerror|nameerror|is not defined\b"
        ),
        0.4,
    ),
    (C.BUILD, WARNING, 0.6),
]

#: what the failed command, the step or the job is called
NAME_RULES: list[Rule] = [
    (
        C.DEPLOYMENT,
        _rx(
            r"(?<![=-])\b(?:deploy|release|publish|dpl|gh-pages|surge|firebase|heroku|netlify|"
            r"twine upload|gem push|cargo publish|npm publish|docker push|helm|kubectl|"
            r"terraform apply|s3_website|aws s3)\b"
        ),
        2.0,
    ),
    (
        C.QUALITY,
        _rx(
            r"lint|\bstyle|format|\bfmt\b|prettier|rubocop|flake8|pylint|pycodestyle|pep8|"
            r"black|isort|mypy|checkstyle|scalastyle|clippy|gofmt|go vet|golangci|shellcheck|"
            r"vint|hlint|credo|swiftlint|phpcs|php-cs-fixer|phpstan|perlcritic|codespell|"
            r"dialyzer|xref|luacheck|stylelint|csslint|sass-lint|javadoc|"
            r"spell|awesome_bot|link.?check|mima|danger|commitlint|sniff|"
            r"\bcheck(?:style|_format|-format)\b|\bcheck[_-]\w+|\w[_-]check\b"
        ),
        1.5,
    ),
    (
        C.TEST,
        _rx(
            r"test|spec|pytest|nosetests|\btox\b|jest|mocha|karma|jasmine|\bava\b|phpunit|"
            r"busted|\bprove\b|vader|themis|pester|ctest|xctest|\bcheck\b|e2e|integration|"
            r"cucumber|behat|codecept|protractor|cypress|selenium|travis-ci.sh|ci/run|\bct\b|"
            r"eunit"
        ),
        1.0,
    ),
    (
        C.BUILD,
        _rx(
            r"install|build|compile|\bmake\b|cmake|configure|bundle|composer|\bnpm ci\b|"
            r"\byarn\b(?! test)|pip |setup\.py|cargo build|go (?:build|get)|stack|cabal|"
            r"mix (?:compile|deps)|rebar3? compile|dotnet build|msbuild|xcodebuild(?!.*test)|"
            r"gradle|mvn|ant\b|sbt (?:compile|package)|webpack|\btsc\b|gulp|grunt|docker build|"
            r"package|dep(?:s|endencies)\b"
        ),
        0.8,
    ),
]


#: lines that say nothing against the build: a check that passed ("No lint errors!",
#: "✔ 0 problems"), a step skipped, a package manager's notice, the CI runner's own set-up
NOT_EVIDENCE = _rx(
    r"^\W*(?:\u2714|\u2713|\u221a|ok\b|pass(?:ed|ing)?\b|success)|"
    r"\b(?:no|0|zero) (?:[\w-]+ ){0,3}(?:errors?|warnings?|offen[cs]es|problems?|issues?|"
    r"failures?|violations?|unused \w+)(?: (?:found|detected))?\W*$|\bskipping\b|^npm WARN\b|"
    r"\.travis/job_stages|^\s*deprecat(?:ion|ed)\b|"
    r"(?:could not|attempting to) download cache|\bcache archive\b"  # the runner's cache
)
#: what a shell's exit status says of itself: 126 the command is not executable, 127 it was not
#: found (a CI set-up mistake); 124 a timeout, 137 killed (the machine)
EXIT_STATUS = _rx(r"(?:exited with|exit (?:code|status)|returned)\s*:?\s*(12[467]|137)\b")
_EXIT_CATEGORY = {
    "126": C.CONFIGURATION,
    "127": C.CONFIGURATION,
    "124": C.INFRASTRUCTURE,
    "137": C.INFRASTRUCTURE,
}

#: a link checker: the network errors it prints are its findings (dead links), not the machine's
LINK_CHECKER = _rx(
    r"awesome_bot|html-?proofer|linkchecker|link-?check|markdown-link-check|lychee|muffet|"
    r"broken-link-checker|\bblc\b|linkinator"
)

#: a line of source code that a compiler quotes under its diagnostic, in its gutter (rustc,
#: gcc, clang, tsc: ``12 |     panic!("Out of memory");``): the code's words are not messages
QUOTED_CODE = _rx(r"^\s*\d+\s*\|(?:\s|$)")

#: warnings made errors: a :data:`WARNING` then fails the build
WARNINGS_FAIL = _rx(
    r"warnings? (?:being )?treated as errors|warnings? as errors?\b|-werror\b|fatal.?warnings|"
    r"failing due to|"
    r"no warnings can be incurred"
)


#: how much an excerpt's lines count: the first (where the job failed), the others
FIRST_EXCERPT = 2.0
LATER_EXCERPT = 0.5

#: the confidence of the pattern library's catch-alls, which vote rather than decide
GENERIC_CAUSE = 0.5


@dataclass(frozen=True)
class Verdict:
    """A category, how sure, and the evidence behind it."""

    category: FailureCategory
    confidence: float
    reasons: list[str] = field(default_factory=list)


def _add(scores: dict[FailureCategory, float], why: dict[FailureCategory, list[str]],
         category: FailureCategory, weight: float, reason: str) -> None:  # fmt: skip
    scores[category] = scores.get(category, 0.0) + weight
    why.setdefault(category, []).append(reason)


def _from_lines(
    evidence: Sequence[Sequence[str]],
    scores: dict[FailureCategory, float],
    why: dict[FailureCategory, list[str]],
) -> None:
    """What the excerpts' lines say: each rule once per excerpt, the first excerpt double."""
    for rank, lines in enumerate(evidence):
        factor = FIRST_EXCERPT if rank == 0 else LATER_EXCERPT
        # a compiler that fails on warnings: its findings (an unused import) fail the build
        warnings_fail = any(WARNINGS_FAIL.search(line) for line in lines)
        # a unified diff (a formatter's check, generated code out of date): the lines it adds
        # and removes are the code's, not messages
        diff = any(DIFF_HUNK.match(line) for line in lines)
        seen: set[int] = set()
        status_said = False
        for line in lines:
            if (diff and DIFF_LINE.match(line)) or QUOTED_CODE.match(line):
                continue
            status = EXIT_STATUS.search(line)
            if status and not status_said:
                status_said = True
                category = _EXIT_CATEGORY[status.group(1)]
                _add(scores, why, category, 2.0 * factor, f"'{line.strip()[:120]}'")
            if SUMMARY.search(line) or FINAL_MARKER.search(line) or NOT_EVIDENCE.search(line):
                continue  # "npm ERR! Test failed", "BUILD FAILED" say that, not why
            weak = 0.25 if WARNING.search(line) and not warnings_fail else 1.0
            for i, (category, rx, weight) in enumerate(LINE_RULES):
                if i not in seen and rx.search(line):
                    seen.add(i)
                    if warnings_fail and category is C.QUALITY:
                        category = C.BUILD
                    # a network error said as a retry's warning is a network error all the same
                    w = 1.0 if category is C.INFRASTRUCTURE else weak
                    _add(scores, why, category, weight * factor * w, f"'{line.strip()[:120]}'")


def _from_names(
    names: Iterable[str | None],
    scores: dict[FailureCategory, float],
    why: dict[FailureCategory, list[str]],
) -> None:
    """What the failed command, the step and the job are called (the first counts most)."""
    for n, name in enumerate(x for x in names if x):
        for category, rx, weight in NAME_RULES:
            if rx.search(name):
                _add(scores, why, category, weight / (n + 1), f"the command or name '{name[:80]}'")
                break


#: what fails first and explains a known cause that follows it ("Connection refused" in the
#: retries before pip's "No matching distribution")
_FIRST_CAUSES = (C.INFRASTRUCTURE, C.CONFIGURATION)


def _said_before(
    evidence: Sequence[Sequence[str]], matched: tuple[FailureCategory, float, str, str]
) -> FailureCategory | None:
    """What the first excerpt says failed above the known cause's line, when that is the
    network or the CI set-up (and the known cause is of another category)."""
    if not evidence or matched[0] in _FIRST_CAUSES or matched[3] not in evidence[0]:
        return None
    for line in evidence[0][: list(evidence[0]).index(matched[3])]:
        if NOT_EVIDENCE.search(line):
            continue
        for category, rx, _ in LINE_RULES:
            if category in _FIRST_CAUSES and rx.search(line):
                return category
    return None


def categorize(
    evidence: Sequence[Sequence[str]],
    names: Iterable[str | None] = (),
    matched: tuple[FailureCategory, float, str, str] | None = None,
) -> Verdict:
    """The category of a failure.

    ``evidence``: the lines of the excerpts, most telling first (the first excerpt's count
    double); ``names``: the failed command or step, then the job; ``matched``: the pattern
    library's (category, confidence, pattern id, matched line), when a known cause matched."""
    scores: dict[FailureCategory, float] = {}
    why: dict[FailureCategory, list[str]] = {}
    said = [x for x in names if x]
    _from_lines(evidence, scores, why)
    _from_names(said, scores, why)
    if said and LINK_CHECKER.search(said[0]):  # its network errors are dead links
        if C.INFRASTRUCTURE in scores:
            _add(scores, why, C.QUALITY, scores.pop(C.INFRASTRUCTURE), "a link checker's finding")
        if matched is not None and matched[0] is C.INFRASTRUCTURE:
            matched = None
    if matched is not None and matched[1] <= GENERIC_CAUSE and not SUMMARY.search(matched[3]):
        # a tool's catch-all ("npm error <anything>", "Failed to execute goal <any>"): it
        # says which tool failed, the lines say how
        _add(scores, why, matched[0], 1.5, f"the known cause '{matched[2]}'")
        matched = None
    first_cause = _said_before(evidence, matched) if matched is not None else None
    if first_cause is not None:
        # the network or the set-up failed first; the known cause followed from it
        _add(scores, why, first_cause, 4.0, "what failed before the known cause")
        matched = None
    if matched is not None and not SUMMARY.search(matched[3]):
        # a known cause (not a tool's last words) decides; the rest is its support
        category, confidence, pattern, _ = matched
        return Verdict(
            category, confidence, [f"the known cause '{pattern}'", *why.get(category, [])][:3]
        )
    if not scores:
        return Verdict(FailureCategory.UNKNOWN, 0.0, [])
    best = max(scores, key=lambda c: scores[c])
    if best is C.TEST and C.FLAKY in scores:
        best = C.FLAKY  # a test failure that says it is flaky is a flaky test's
    total = sum(scores.values())
    confidence = round(min(0.95, 0.3 + 0.65 * scores[best] / total), 3)
    return Verdict(best, confidence, why[best][:3])

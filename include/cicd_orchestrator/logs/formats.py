"""Log formats: detection and step segmentation.

Formats: ``github`` (raw GitHub Actions job logs: timestamps, ``##[group]``, ``##[error]``,
workflow commands, or the ``job<TAB>step<TAB>timestamp`` form of ``gh run view --log``),
``gitlab`` (job traces with ``section_start:<ts>:<name>`` / ``section_end`` markers) and
``jenkins`` (console logs: ``[Pipeline] { (Stage)``, freestyle ``[job] $ cmd`` steps,
``Finished: RESULT``), ``travis`` (Travis CI: ``travis_fold``/``travis_time`` markers, each
command echoed as ``$ cmd`` and closed by ``The command "cmd" exited with N.``); ``plain``
for anything else. A step of a Travis log is one command, from its echo to its exit line.

A :class:`StepTracker` receives only the marker lines (the scanner finds them) and builds
:class:`LogStep` segments with 1-based inclusive line ranges of the original log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

FORMATS = ("github", "gitlab", "jenkins", "travis", "plain")
MAX_STEPS = 1000

_GH_TS = re.compile(
    r"^(?:[^\t\n]*\t[^\t\n]*\t)?\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z", re.M
)
_GH_FULL = re.compile(r"^[^\t\n]+\t[^\t\n]+\t\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", re.M)
_GH_MARK = re.compile(
    r"##\[(?:group|endgroup|error|warning|section)\]|^::(?:error|warning|group)", re.M
)
_GL_MARK = re.compile(r"section_(?:start|end):\d+:|Running with gitlab-runner|Job succeeded")
_TRAVIS_MARK = re.compile(r"travis_(?:fold|time):(?:start|end):|^Worker information\r?$", re.M)
_JK_MARK = re.compile(
    r"^\[Pipeline\] |^Started by |^Building (?:in workspace|remotely on)|^Finished: [A-Z]+|"
    r"^Running as SYSTEM|^\[WS-CLEANUP\]|^\[[\w .-]+\] \$ ",
    re.M,
)


@dataclass
class LogStep:
    """One step of a job: its name, its conclusion when the log shows it, its lines."""

    name: str
    start: int
    end: int
    conclusion: str | None = None


def detect_format(sample: str) -> str:
    """Guess the format from the first lines of a log (ANSI and all)."""
    if len(_TRAVIS_MARK.findall(sample)) >= 2:
        return "travis"
    gl = len(_GL_MARK.findall(sample))
    jk = len(_JK_MARK.findall(sample))
    gh = len(_GH_MARK.findall(sample)) + len(_GH_TS.findall(sample[:20000])) // 5
    if gl and gl >= jk:
        return "gitlab"
    if gh > jk and gh > 0:
        return "github"
    if jk:
        return "jenkins"
    return "plain"


def is_full_github(sample: str) -> bool:
    """The ``job<TAB>step<TAB>timestamp`` form, where the step is a column."""
    return len(_GH_FULL.findall(sample[:20000])) >= 3


_GH_GROUP = re.compile(r"##\[group\](.*)")
_GH_STEP_START = re.compile(r"^(?:Run |Post |Set up job|Complete job|Cleaning up orphan)")
_GH_ERROR_END = re.compile(r"##\[error\]Process completed with exit code (\d+)")
_GH_CANCEL = re.compile(r"##\[error\]The operation was canceled|has exceeded the maximum execution")
_GL_START = re.compile(r"section_start:\d+:([\w.\-]+)")
_GL_END = re.compile(r"section_end:\d+:([\w.\-]+)")
_GL_RESULT = re.compile(r"^(?:ERROR: Job failed|Job succeeded|Cleaning up project directory)")
_AUX_STEP = re.compile(r"^(?:cleanup|upload_artifacts|after_script|Post |Complete job)", re.I)
_JK_STAGE = re.compile(r"^\[Pipeline\] \{ \((.+)\)\s*$")
_JK_SHELL = re.compile(r"^\[[\w .@/-]+\] \$ (.+)$")
_JK_FAILED = re.compile(
    r"^Build step '(.+)' marked build as failure|^ERROR: script returned exit code"
)
_JK_SKIPPED = re.compile(r'^Stage "(.+)" skipped due to')
_TR_COMMAND = re.compile(r"^\$ (.+)")
_TR_EXIT = re.compile(r'^The command "(.*)" (?:failed and )?exited with (\d+)')
_TR_DONE = re.compile(r"^Done\. Your build exited with (\d+)")
_TR_MARKERS = re.compile(r"travis_(?:fold|time):(?:start|end):\S*")
_JK_FINISHED = re.compile(r"^Finished: ([A-Z]+)")
_JK_RESULT = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "ABORTED": "cancelled",
    "UNSTABLE": "failure",
}


class StepTracker:
    """Builds steps from marker lines, in order; bounded to :data:`MAX_STEPS` steps."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.steps: list[LogStep] = []
        self.job_conclusion: str | None = None
        # inside the group a GitHub Actions "Run" step opens with: the step's script and
        # environment, echoed before it runs (its words are the command's, not its output)
        self._in_script_echo = False
        self._overflow = False
        self.column_steps = False

    # ------------------------------------------------------------------ helpers
    def _open(self, name: str, line: int) -> None:
        if self.steps and self.steps[-1].end < 0:
            self.steps[-1].end = line - 1
        if len(self.steps) >= MAX_STEPS:
            self._overflow = True
            return
        self.steps.append(LogStep(name=name.strip()[:200] or "step", start=line, end=-1))

    def _current(self) -> LogStep | None:
        return self.steps[-1] if self.steps and self.steps[-1].end < 0 else None

    def _fail_current(self, conclusion: str = "failure") -> None:
        candidates = [s for s in self.steps if s.conclusion != "skipped"]
        step = candidates[-1] if candidates else None
        if step is not None and step.conclusion is None:
            step.conclusion = conclusion

    # ------------------------------------------------------------------ markers
    def observe(self, line_no: int, text: str) -> bool:
        """Feed one (cleaned) candidate line; True when it is a structural marker only."""
        if self.fmt == "github":
            return self._github(line_no, text)
        if self.fmt == "gitlab":
            return self._gitlab(line_no, text)
        if self.fmt == "jenkins":
            return self._jenkins(line_no, text)
        if self.fmt == "travis":
            return self._travis(line_no, text)
        return False

    def observe_step_column(self, line_no: int, step_name: str) -> None:
        """``job<TAB>step<TAB>ts`` logs: the step column names the step."""
        cur = self._current()
        if cur is None or cur.name != step_name:
            self._open(step_name, line_no)

    def _github(self, line_no: int, text: str) -> bool:
        m = _GH_GROUP.search(text)
        if m:
            name = m.group(1)
            self._in_script_echo = name.startswith("Run ")
            if not self.column_steps and (_GH_STEP_START.match(name) or not self.steps):
                self._open(name, line_no)
            return True
        if "##[endgroup]" in text:
            self._in_script_echo = False
            return True
        if text.startswith("Post job cleanup") and not self.column_steps:
            cur = self._current()
            if cur is None or cur.name != "Post job cleanup":
                self._open("Post job cleanup", line_no)
            return True
        m2 = _GH_ERROR_END.search(text)
        if m2:
            self._fail_current()
        elif _GH_CANCEL.search(text):
            self._fail_current("cancelled")
        elif "##[error]" in text:
            self._fail_current()
        else:
            return self._in_script_echo
        self._in_script_echo = False  # an error ends any echo (a log cut short)
        return False

    def _gitlab(self, line_no: int, text: str) -> bool:
        m = _GL_START.search(text)
        if m:
            self._open(m.group(1), line_no)
            return True
        m = _GL_END.search(text)
        if m:
            cur = self._current()
            if cur is not None and cur.name == m.group(1):
                cur.end = line_no
            return True
        if text.startswith("ERROR: Job failed"):
            self.job_conclusion = "failure"
        elif text.startswith("Job succeeded"):
            self.job_conclusion = "success"
        return False

    def _jenkins(self, line_no: int, text: str) -> bool:
        m = _JK_STAGE.match(text)
        if m:
            self._open(m.group(1), line_no)
            return True
        if text.startswith("[Pipeline] "):
            return True
        m = _JK_SKIPPED.match(text)
        if m:
            for step in self.steps:
                if step.name == m.group(1):
                    step.conclusion = "skipped"
            return False
        m = _JK_SHELL.match(text)
        if m:
            self._open(m.group(1), line_no)
            return False
        if _JK_FAILED.match(text):
            self._fail_current()
            return False
        m = _JK_FINISHED.match(text)
        if m:
            self.job_conclusion = _JK_RESULT.get(m.group(1), m.group(1).lower())
        return False

    def _travis(self, line_no: int, text: str) -> bool:
        """Pieces of one line (split on lone ``\\r``): fold and timer markers, a command's
        echo (a new step), its exit line (the step's end and conclusion)."""
        only_markers = True
        for piece in text.split("\r"):
            piece = _TR_MARKERS.sub("", piece).strip()
            if not piece:
                continue
            m = _TR_COMMAND.match(piece)
            if m:
                self._open(m.group(1), line_no)
                continue
            only_markers = False
            m = _TR_EXIT.match(piece)
            if m:
                cur = self._current()
                if cur is not None:
                    cur.end = line_no
                    cur.conclusion = "success" if m.group(2) == "0" else "failure"
                continue
            m = _TR_DONE.match(piece)
            if m:
                self.job_conclusion = "success" if m.group(1) == "0" else "failure"
        return only_markers

    # ------------------------------------------------------------------ result
    def finish(self, last_line: int) -> list[LogStep]:
        """Close the open step; steps without visible conclusion stay ``None`` except that
        a step followed by another step succeeded (CI stops at the first failure)."""
        if self.steps and self.steps[-1].end < 0:
            self.steps[-1].end = max(self.steps[-1].start, last_line)
        failed = [i for i, s in enumerate(self.steps) if s.conclusion in ("failure", "cancelled")]
        first_failed = failed[0] if failed else len(self.steps)
        for i, step in enumerate(self.steps):
            if step.end < 0:
                step.end = step.start
            if step.conclusion is None and i + 1 < len(self.steps) and i < first_failed:
                step.conclusion = "success"
        if self.job_conclusion == "success":
            for step in self.steps:
                step.conclusion = step.conclusion or "success"
        elif (
            self.job_conclusion in ("failure", "cancelled")
            and self.steps
            and not any(s.conclusion in ("failure", "cancelled") for s in self.steps)
        ):
            main = [s for s in self.steps if not _AUX_STEP.match(s.name)] or self.steps
            main[-1].conclusion = self.job_conclusion
        if self._overflow:
            log.warning("more than %d steps: later steps merged into the last one", MAX_STEPS)
        return self.steps

    @property
    def overflow(self) -> bool:
        return self._overflow

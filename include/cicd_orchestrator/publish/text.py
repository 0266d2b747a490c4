"""What goes to the hosting as a body (a pull request's, a comment's, an issue's) with text
from logs, commits or repository files in it: data, never markup that acts.

``safe_markdown`` is the one way there. It reads the markdown it is given as CommonMark reads
code fences, and:

- re-fences every fenced block with a fence longer than any run of backticks inside it, so
  no line of a log can close it (``fence`` makes such a block in the first place); inside a
  fence, mentions and HTML are shown, not acted on;
- outside the fences, escapes ``&``, ``<`` and ``>`` (no HTML, no image or script), puts a
  zero-width joiner after every ``@`` that starts a name (``@user`` and ``@org/team`` ping
  nobody) and after the ``!`` of an image (no image is fetched);
- drops control characters;
- cuts the text under ``limit`` characters, at a line where it can (a cut fence is closed),
  and says so with a link to the full report (or where it is).

The marker goes before the safe text, as it is (it is the orchestrator's own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cicd_orchestrator.attempt import Attempt
from cicd_orchestrator.ci.base import CIProvider

ZWJ = "\u200d"
#: what is kept free under a hosting's limit (the marker, a provider's own lines)
BODY_RESERVE = 2_000
#: the longest title written (GitHub takes 256 characters, GitLab 255)
TITLE_LIMIT = 200
#: the characters kept for a note on a cut text, besides the note itself
_NOTE_ROOM = 400
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_BACKTICKS = re.compile(r"`+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_MENTION = re.compile(r"@(?=[\w-])")
_IMAGE = re.compile(r"!(?=\[)")
_INFO = re.compile(r"[^\w+.#-]")


def fence(text: str, info: str = "") -> str:
    """``text`` as a fenced code block whose fence is longer than any run of backticks in
    it (never shorter than three)."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{_INFO.sub('', info)}\n{text}\n{ticks}"


def session_url(base_url: str | None, session_id: str) -> str:
    """The address of a session's page in Airflow ("" without a known base URL)."""
    if not base_url:
        return ""
    return f"{base_url.rstrip('/')}/cicd/sessions/{session_id}"


def report_link(base_url: str | None, session_id: str) -> str:
    """Where a session's full report is: its page in Airflow, or, without a known base URL,
    how to find it there."""
    if base_url:
        return session_url(base_url, session_id)
    return f"the session `{session_id}` on the CI/CD sessions page of Airflow (/cicd/sessions)"


@dataclass
class _Block:
    """Prose lines, or the lines of a fenced block (``indent`` and ``info`` of its fence)."""

    lines: list[str]
    fenced: bool = False
    indent: str = ""
    info: str = ""

    def render(self) -> str:
        if not self.fenced:
            return "\n".join(_neutral(line) for line in self.lines)
        code = fence("\n".join(self.lines), self.info)
        return "\n".join(self.indent + line if line else line for line in code.split("\n"))

    def cut(self, room: int) -> _Block | None:
        """The longest head of this block that renders within ``room`` characters (the last
        line kept may be cut short)."""
        kept: list[str] = []
        used = 0  # the rendered length of the kept lines, without the fence
        longest = 0  # the longest run of backticks in them
        for line in self.lines:
            shown = self._line_length(line)
            runs = max((len(r) for r in _BACKTICKS.findall(line)), default=0)
            if used + shown + self._fence_length(max(longest, runs)) <= room:
                kept.append(line)
                used += shown
                longest = max(longest, runs)
                continue
            left = room - used - self._fence_length(longest) - len(self.indent) - 1
            if left > 0:
                kept.append(line[:left])  # what fits of the line (shortened below if need be)
            break
        head = _Block(kept, self.fenced, self.indent, self.info)
        while head.lines and len(head.render()) > room:  # escaping made it longer
            last = head.lines.pop()
            if len(last) > 1:
                head.lines.append(last[: len(last) // 2])
        return head if head.lines else None

    def _line_length(self, line: str) -> int:
        """What a line adds to the rendered block (its newline included)."""
        if not self.fenced:
            return len(_neutral(line)) + 1
        return len(line) + (len(self.indent) if line else 0) + 1

    def _fence_length(self, longest: int) -> int:
        """What the fence lines add, for a longest run of backticks ``longest``."""
        if not self.fenced:
            return 0
        ticks = max(3, longest + 1)
        return 2 * (len(self.indent) + ticks) + len(_INFO.sub("", self.info)) + 1


def _neutral(line: str) -> str:
    """A line of prose that renders as text: no HTML, no mention, no image."""
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _IMAGE.sub("!" + ZWJ, _MENTION.sub("@" + ZWJ, line))


def _blocks(text: str) -> list[_Block]:
    """The prose and fenced blocks of ``text`` (a fence left open runs to the end)."""
    blocks: list[_Block] = []
    prose: list[str] = []
    lines = iter(_CONTROL.sub("", text.replace("\r\n", "\n")).split("\n"))
    for line in lines:
        opening = _FENCE.match(line)
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            prose.append(line)
            continue
        if prose:
            blocks.append(_Block(prose))
            prose = []
        mark = opening["fence"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(mark[0])}{{{len(mark)},}}\s*$")
        code: list[str] = []
        for inner in lines:
            if closing.match(inner):
                break
            code.append(inner)
        info = opening["info"].strip().split(" ")[0]
        blocks.append(_Block(code, True, opening["indent"], info))
    if prose:
        blocks.append(_Block(prose))
    return blocks


def safe_markdown(text: str, *, limit: int, full_report: str) -> str:
    """``text`` made safe for a hosting's body (see the module docstring), at most ``limit``
    characters; ``full_report`` says where the whole of a cut text is (``report_link``)."""
    blocks = _blocks(text)
    rendered = "\n".join(b.render() for b in blocks)
    if len(rendered) <= limit:
        return rendered
    note = (
        f"\n\n---\n*Cut to fit: {len(rendered):,} characters were too many for one body. "
        f"The full report: {_neutral(full_report)}*"
    )
    room = max(0, limit - len(note) - _NOTE_ROOM)
    kept: list[str] = []
    for block in blocks:
        shown = block.render()
        if len(shown) + 1 <= room:
            kept.append(shown)
            room -= len(shown) + 1
            continue
        head = block.cut(room)
        if head is not None:
            kept.append(head.render())
        break
    return "\n".join(kept) + note


def safe_body(attempt: Attempt, text: str) -> str:
    """``text`` made safe for the hosting of ``attempt`` (``safe_markdown``), under its
    provider's body limit; a cut text links the session's report in Airflow (the configured
    ``airflow_base_url``, else the one the glue knows)."""
    base_url = attempt.config.airflow_base_url or attempt.airflow_base_url
    return safe_text(attempt.provider, base_url, attempt.state.session_id, text)


def safe_text(provider: CIProvider, base_url: str | None, session_id: str, text: str) -> str:
    """``text`` made safe for ``provider``'s hosting (``safe_markdown``) under its body
    limit; a cut text links the report of the session ``session_id``."""
    return safe_markdown(
        text,
        limit=provider.body_limit - BODY_RESERVE,
        full_report=report_link(base_url, session_id),
    )


def safe_title(text: str) -> str:
    """A title with text from a repository in it: one line, no mention, at most
    ``TITLE_LIMIT`` characters."""
    line = " ".join(_CONTROL.sub(" ", text).split())
    line = _MENTION.sub("@" + ZWJ, line)
    return line if len(line) <= TITLE_LIMIT else line[: TITLE_LIMIT - 1] + "\u2026"

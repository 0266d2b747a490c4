"""Line clean-up and normalisation.

``clean_line`` removes what is presentation only (ANSI colours, the timestamp or
``job<TAB>step<TAB>timestamp`` prefix of GitHub Actions logs, Jenkins timestamper prefixes).
``normalize_line`` additionally replaces what changes from one run of the same job to the
next (timestamps, durations, hashes, temporary paths, uuids, ids, addresses) so that a pass
log can serve as a baseline of noise. ``signature_text`` goes further (paths reduced to file
names, every number replaced) for failure signatures that survive re-runs and small edits.
"""

from __future__ import annotations

import hashlib
import logging
import re

log = logging.getLogger(__name__)

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][AB012]")
_GH_PREFIX_RE = re.compile(
    r"^(?:[^\t\n]*\t[^\t\n]*\t)?\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?"
)
_JENKINS_TS_RE = re.compile(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?\] ")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

_SUBSTITUTIONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d| ?UTC)?"
        ),
        "<TS>",
    ),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"), "<TIME>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<UUID>",
    ),
    (
        re.compile(
            r"(?:/tmp|/var/tmp|/private/var/folders|/var/folders|[A-Za-z]:\\Users\\[^\\\s]+"
            r"\\AppData\\Local\\Temp|/home/runner/work/_temp|/builds/tmp)[^\s'\"):,]*"
        ),
        "<TMP>",
    ),
    (re.compile(r"\b(?:0x)?[0-9a-f]{7,64}\b"), "<HEX>"),
    (
        re.compile(
            r"\b\d+(?:[.,]\d+)?\s?(?:ms|msec|s|sec|secs|seconds?|m|mins?|minutes?|h|hours?)\b",
            re.I,
        ),
        "<DUR>",
    ),
    (re.compile(r"(?i)(elapsed|took|duration|time)(:?\s*)\d+(?:[.,]\d+)?"), r"\1\2<DUR>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:[kKMG]i?B|bytes)(?:/s)?\b"), "<SIZE>"),
    (re.compile(r"\b\d{6,}\b"), "<ID>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<IP>"),
    (re.compile(r"@[0-9a-f]{6,}\b"), "@<HEX>"),
    (re.compile(r"[ \t]+"), " "),
]
# a path, tried only where one can begin (not inside a run of path characters: quadratic)
_SIG_PATH = re.compile(r"(?<![\w.+~/\\-])(?:[A-Za-z]:)?(?:[\w.+~-]*[/\\])+([\w.+-]+)")
_SIG_EXTRA: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\d+"), "N"),
    (re.compile(r"^\s*(?:\[(?:error|ERROR)\]|##\[error\]|error:?|E)\s+"), ""),
]


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours, cursor moves, OSC titles)."""
    if "\x1b" not in text:
        return text
    return ANSI_RE.sub("", text)


def strip_prefix(text: str) -> str:
    """Remove the timestamp prefix of GitHub Actions / Jenkins timestamper lines."""
    if text[:1].isdigit() or "\t" in text[:200]:
        text = _GH_PREFIX_RE.sub("", text, count=1)
    elif text.startswith("[") and text[1:2].isdigit():
        text = _JENKINS_TS_RE.sub("", text, count=1)
    return text


#: Travis CI's fold and timer markers, each ending in a lone ``\r``
_TRAVIS_MARKER = re.compile(r"travis_(?:fold|time):(?:start|end):[^\r]*")


def terminal_text(text: str) -> str:
    """What a terminal shows of a line with lone ``\r`` in it (progress updates, Travis'
    fold and timer markers): its last piece that is not empty once the markers are gone."""
    if "\r" not in text:
        return text
    for piece in reversed(text.split("\r")):
        piece = _TRAVIS_MARKER.sub("", strip_ansi(piece))
        if piece.strip():
            return piece
    return ""


def clean_line(text: str, max_chars: int = 1000) -> str:
    """Presentation-free text of one log line (no ANSI, no timestamp prefix, no controls;
    of a line overwritten by ``\r``, what the terminal shows)."""
    text = strip_prefix(strip_ansi(terminal_text(text)))
    if len(text) > max_chars:
        text = text[:max_chars] + "…"
    if _CONTROL_RE.search(text):
        text = _CONTROL_RE.sub("", text)
    return text.rstrip()


def normalize_line(text: str) -> str:
    """What stays the same in the same line of two runs of the same job."""
    text = clean_line(text)
    for rx, repl in _SUBSTITUTIONS:
        text = rx.sub(repl, text)
    return text.strip()


def signature_text(text: str) -> str:
    """Normalised further: file names instead of paths, ``N`` for every number."""
    text = normalize_line(_SIG_PATH.sub(r"\1", clean_line(text)))
    for rx, repl in _SIG_EXTRA:
        text = rx.sub(repl, text)
    return text.strip()


def line_hash(text: str) -> int:
    """A 64-bit hash of the normalised line (stable across processes)."""
    digest = hashlib.blake2b(normalize_line(text).encode("utf-8", "replace"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def signature(lines: list[str], salt: str = "") -> str:
    """A stable sha1 (16 hex digits) of the normalised error lines."""
    body = "\n".join(s for s in (signature_text(line) for line in lines) if s)
    return hashlib.sha1(f"{salt}\n{body}".encode("utf-8", "replace")).hexdigest()[:16]

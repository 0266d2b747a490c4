"""The failure pattern library: load, validate, match.

The library is data (``patterns.yaml`` beside this module, validated against
``patterns.schema.json`` with jsonschema when loaded). A pattern matches a log line when one
of its indications (Python regexes) is found in it; its named groups become captures, and
its ``extra`` regexes add captures from the lines around the match.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.exceptions import ConfigError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DEFAULT_LIBRARY = HERE / "patterns.yaml"
SCHEMA_PATH = HERE / "patterns.schema.json"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_EMPTY_PARENS = re.compile(r"\s*\(\?\)|\s+\?(?=\s|$)")
#: a regex that begins with a repeated character class (in a named group or not), unanchored:
#: tried at every character of a long run of that class, each try running to the run's end,
#: it takes time quadratic in the line's length (a line of a log is the attacker's to write)
_UNANCHORED_RUN = re.compile(r"^(?:\(\?P<\w+>)?(?:\[(?:\\.|[^\]\\])+\]|\\[dDwWsS]|\.)[+*]")


class PatternLibraryError(ConfigError):
    """The pattern library does not load, does not validate or holds a bad regex."""


@dataclass(frozen=True)
class Pattern:
    """One known failure cause."""

    id: str
    name: str
    category: FailureCategory
    description: str
    indications: tuple[re.Pattern[str], ...]
    recipe: str
    confidence: float
    priority: int = 50
    needs_person: bool = False
    message: str = ""
    extra: tuple[re.Pattern[str], ...] = ()

    def search(self, text: str) -> dict[str, str] | None:
        """Captures (possibly empty) when an indication is found in ``text``, else None."""
        for rx in self.indications:
            m = rx.search(text)
            if m:
                return {k: v for k, v in m.groupdict().items() if v}
        return None

    def extra_captures(self, lines: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        if not self.extra:
            return out
        for text in lines:
            for rx in self.extra:
                m = rx.search(text)
                if m:
                    for k, v in m.groupdict().items():
                        if v and k not in out:
                            out[k] = v
        return out

    def all_files(self, lines: Iterable[str], limit: int = 50) -> list[str]:
        """Every distinct ``file`` capture of this pattern's regexes in ``lines``."""
        found: dict[str, None] = {}
        for text in lines:
            for rx in (*self.indications, *self.extra):
                if "file" not in rx.groupindex:
                    continue
                for m in rx.finditer(text):
                    if m.group("file") and len(found) < limit:
                        found.setdefault(m.group("file"), None)
        return list(found)

    def render(self, captures: dict[str, str]) -> str:
        if not self.message:
            return self.name
        text = _PLACEHOLDER.sub(lambda m: captures.get(m.group(1), "?"), self.message)
        return _EMPTY_PARENS.sub("", text).strip()


@dataclass
class PatternMatch:
    """A pattern found in the evidence lines of a log."""

    pattern: Pattern
    text: str
    captures: dict[str, str] = field(default_factory=dict)
    line: int | None = None
    rank: int = 0

    @property
    def message(self) -> str:
        return self.pattern.render(self.captures)


@dataclass
class PatternLibrary:
    """The validated library."""

    version: int
    patterns: list[Pattern]
    prefilter: list[str]
    source: str = ""

    def __post_init__(self) -> None:
        self.by_id = {p.id: p for p in self.patterns}

    def prefilter_regex(self) -> str:
        """One case-insensitive alternation of the prefilter regexes (grep -E compatible)."""
        return "|".join(self.prefilter)

    def match_line(self, text: str) -> list[tuple[Pattern, dict[str, str]]]:
        out = []
        for pat in self.patterns:
            caps = pat.search(text)
            if caps is not None:
                out.append((pat, caps))
        return out

    def best_match(
        self, lines: Sequence[tuple[int, int | None, str]], context: Sequence[str] = ()
    ) -> PatternMatch | None:
        """The most telling match among ``(rank, line number, text)`` evidence lines.

        Higher priority wins; then higher confidence; then the better-ranked excerpt.
        """
        best: PatternMatch | None = None
        best_key: tuple[float, float, int] | None = None
        for rank, line_no, text in lines:
            for pat, caps in self.match_line(text):
                key = (pat.priority - 4.0 * min(rank, 5), pat.confidence, -rank)
                if best_key is None or key > best_key:
                    best, best_key = PatternMatch(pat, text, caps, line_no, rank), key
        if best is not None:
            pool = [t for _, _, t in lines] + list(context)
            for k, v in best.pattern.extra_captures(pool).items():
                best.captures.setdefault(k, v)
            files = best.pattern.all_files(pool)
            if files:
                best.captures.setdefault("file", files[0])
                best.captures["files"] = ",".join(files)
        return best


def _compile(
    pid: str, what: str, regexes: Sequence[str], linear: bool = True
) -> tuple[re.Pattern[str], ...]:
    """Compile ``regexes``; with ``linear`` (they are matched with Python's ``re``), refuse
    one that starts with an unanchored run (see ``_UNANCHORED_RUN``)."""
    out = []
    for i, rx in enumerate(regexes):
        if linear and _UNANCHORED_RUN.match(rx):
            raise PatternLibraryError(
                f"pattern {pid}: {what}[{i}] begins with a repeated character class: anchor "
                "it, e.g. with a lookbehind of the same class such as (?<![\\w.-]), so that "
                "a long line of that class is not tried at each of its characters"
            )
        try:
            out.append(re.compile(rx))
        except re.error as exc:
            raise PatternLibraryError(
                f"pattern {pid}: {what}[{i}] is not a valid regex: {exc}"
            ) from exc
    return tuple(out)


def _build(data: dict[str, Any], source: str) -> PatternLibrary:
    patterns: list[Pattern] = []
    seen: set[str] = set()
    for item in data["patterns"]:
        pid = item["id"]
        if pid in seen:
            raise PatternLibraryError(f"{source}: duplicate pattern id {pid!r}")
        seen.add(pid)
        patterns.append(
            Pattern(
                id=pid,
                name=item["name"],
                category=FailureCategory(item["category"]),
                description=item.get("description", ""),
                indications=_compile(pid, "indications", item["indications"]),
                recipe=item["recipe"],
                confidence=float(item["confidence"]),
                priority=int(item.get("priority", 50)),
                needs_person=bool(item.get("needs_person", False)),
                message=item.get("message", ""),
                extra=_compile(pid, "extra", item.get("extra", [])),
            )
        )
    prefilter = list(data["prefilter"])
    _compile("prefilter", "prefilter", prefilter, linear=False)  # one automaton (prefilter.py)
    return PatternLibrary(
        version=int(data["version"]), patterns=patterns, prefilter=prefilter, source=source
    )


@functools.lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def validate_library(data: Any, source: str = "<data>") -> None:
    """Raise :class:`PatternLibraryError` naming the first schema violation."""
    import jsonschema  # only where a library is checked: a tenth of a second to import

    try:
        jsonschema.validate(data, _schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise PatternLibraryError(
            f"{source}: invalid pattern library at {where}: {exc.message}"
        ) from exc


def load_library_data(data: Any, source: str = "<data>") -> PatternLibrary:
    validate_library(data, source)
    return _build(data, source)


def load_library(path: str | Path | None = None) -> PatternLibrary:
    """Load and validate a library (the packaged one by default, cached)."""
    if path is None:
        return _default_library()
    return _load_path(Path(path))


def _load_path(path: Path, checked: bool = True) -> PatternLibrary:
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except OSError as exc:
        raise PatternLibraryError(f"cannot read pattern library {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PatternLibraryError(f"pattern library {path} is not valid YAML: {exc}") from exc
    lib = load_library_data(data, str(path)) if checked else _build(data, str(path))
    log.debug("loaded %d patterns from %s", len(lib.patterns), path)
    return lib


@functools.lru_cache(maxsize=1)
def _default_library() -> PatternLibrary:
    """The packaged library: checked against its schema by the tests, not at each start."""
    return _load_path(DEFAULT_LIBRARY, checked=False)

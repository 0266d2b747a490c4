"""``setup.cfg``: ``[options] install_requires`` and ``[options.extras_require]``, read with
configparser and changed by one inserted line, so the file stays as written."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from cicd_orchestrator.repair import files
from cicd_orchestrator.repair.python_deps.model import TEST_GROUPS, CannotEditError
from cicd_orchestrator.repair.python_deps.names import normalize, requirement_name
from cicd_orchestrator.repair.python_deps.versions import operator_style, styled

PATH = "setup.cfg"
RUNTIME = ("options", "install_requires")
_HEADER = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")


def load(root: Path) -> configparser.ConfigParser | None:
    """The parsed ``setup.cfg`` (None when there is none)."""
    if not files.is_file(root, PATH):
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(files.read_text(root, PATH), source=PATH)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise CannotEditError(f"{PATH} does not parse: {exc}") from exc
    return parser


def entries(value: str) -> list[str]:
    """The requirements of an option value (one a line, or separated by ``;``)."""
    out: list[str] = []
    for line in value.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", ";")):
            out.extend(p.strip() for p in line.split(";") if p.strip())
    return out


def project_name(parser: configparser.ConfigParser) -> str | None:
    return parser.get("metadata", "name", fallback=None)


def requirement_file(parser: configparser.ConfigParser) -> list[str]:
    """``install_requires = file: requirements.txt``: the files named."""
    value = parser.get(*RUNTIME, fallback="").strip()
    if not value.startswith("file:"):
        return []
    return [p.strip() for p in value[5:].split(",") if p.strip()]


def places(parser: configparser.ConfigParser, test: bool) -> list[tuple[str, str]]:
    """The options (section, key) the requirement may go to, the preferred first."""
    found = [("options.extras_require", g) for g in TEST_GROUPS] if test else []
    if test:
        found.append(("options", "tests_require"))
    found.append(RUNTIME)
    return [(s, k) for s, k in found if parser.has_option(s, k)]


def declared_in(parser: configparser.ConfigParser, dist: str) -> str | None:
    options = [RUNTIME, ("options", "tests_require")]
    if parser.has_section("options.extras_require"):
        options += [("options.extras_require", k) for k in parser["options.extras_require"]]
    for section, key in options:
        names = [
            normalize(requirement_name(e)) for e in entries(parser.get(section, key, fallback=""))
        ]
        if normalize(dist) in names:
            return f"{PATH} [{section}] {key}"
    return None


def _option_lines(lines: list[str], section: str, key: str) -> tuple[int, int]:
    """The first and last line index of the option ``key`` of ``section``."""
    key_line = re.compile(rf"^{re.escape(key).replace('_', '[_-]')}\s*[=:]", re.I)
    current, start = None, -1
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            current = header.group("name").strip()
        elif current == section and key_line.match(line):
            start = i
            break
    if start < 0:
        raise CannotEditError(f"{PATH}: [{section}] {key} was not found as a line")
    end = start
    for j in range(start + 1, len(lines)):
        if lines[j].strip() and not lines[j][:1].isspace():
            break
        if lines[j].strip():
            end = j
    return start, end


def add(
    root: Path,
    parser: configparser.ConfigParser,
    place: tuple[str, str],
    dist: str,
    version: str | None,
) -> str:
    """Insert ``dist`` into the option ``place``; the entry written."""
    section, key = place
    current = entries(parser.get(section, key))
    entry = styled(dist, version, operator_style(current))
    lines = files.read_lines(root, PATH)
    start, end = _option_lines(lines, section, key)
    newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
    if not lines[end].endswith("\n"):
        lines[end] += newline
    if end > start:
        indent = lines[end][: len(lines[end]) - len(lines[end].lstrip())]
        lines.insert(end + 1, f"{indent}{entry}{newline}")
    elif lines[start].split("=", 1)[-1].split(":", 1)[-1].strip():
        body = lines[start].rstrip("\r\n")
        lines[start] = f"{body}; {entry}{newline}"
    else:
        lines.insert(start + 1, f"    {entry}{newline}")
    files.write_lines(root, PATH, lines)
    return f"{entry} ({PATH} [{section}] {key})"

"""A repository's CODEOWNERS, read as GitHub and GitLab read it, defensively: the file is
repository content an attacker may have written.

- Where: ``.github/CODEOWNERS``, ``CODEOWNERS``, ``docs/CODEOWNERS`` (GitHub), and
  ``.gitlab/CODEOWNERS`` (GitLab); the first that exists counts.
- A line is a pattern (gitignore-style: ``*``, ``**``, ``?``; a leading ``/`` or a ``/`` inside
  anchors it at the root; a trailing ``/`` matches a directory's contents) and its owners. The
  last matching line wins; GitLab's sections (``[Name]``, ``^[Name]``, with default owners
  after the bracket) each add the owners of their own last match.
- Only ``@user`` and ``@org/team`` handles count (valid names only, ``people.USER`` and
  ``people.TEAM``); e-mail addresses and anything else are dropped. The text read is capped
  (``MAX_BYTES``), and so are the lines, a pattern's length and its wildcards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cicd_orchestrator.people import TEAM, USER

LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")
#: the most of a CODEOWNERS file read (GitHub ignores a file over 3 MB; few are over 10 kB)
MAX_BYTES = 128 * 1024
MAX_RULES = 2_000
MAX_PATTERN = 256
MAX_WILDCARDS = 8
_SECTION = re.compile(r"^\^?\[(?P<name>[^\]]{1,100})\](?:\[\d+\])?(?P<owners>.*)$")


@dataclass(frozen=True)
class Rule:
    pattern: str
    regex: re.Pattern[str]
    users: tuple[str, ...]
    teams: tuple[str, ...]


@dataclass
class CodeOwners:
    """The rules of each section (GitHub's file is one section)."""

    sections: list[list[Rule]] = field(default_factory=list)

    def owners_of(self, paths: list[str]) -> tuple[list[str], list[str]]:
        """The users and teams owning ``paths``, in the file's order, without repeats."""
        users: dict[str, None] = {}
        teams: dict[str, None] = {}
        for path in paths:
            for rules in self.sections:
                rule = next((r for r in reversed(rules) if r.regex.fullmatch(path)), None)
                if rule is not None:
                    users.update(dict.fromkeys(rule.users))
                    teams.update(dict.fromkeys(rule.teams))
        return list(users), list(teams)


def _handles(tokens: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    users, teams = [], []
    for token in tokens:
        if not token.startswith("@"):
            continue  # an e-mail address or something else: never used
        name = token[1:]
        if "/" in name and TEAM.fullmatch(name):
            teams.append(name)
        elif USER.fullmatch(name):
            users.append(name)
    return tuple(dict.fromkeys(users)), tuple(dict.fromkeys(teams))


def pattern_regex(pattern: str) -> re.Pattern[str] | None:
    """The regex of a CODEOWNERS pattern over a path relative to the root (None: a pattern
    not accepted: too long, too many wildcards, or a negation, which CODEOWNERS lacks)."""
    if (
        not pattern
        or len(pattern) > MAX_PATTERN
        or pattern.startswith("!")
        or pattern.count("*") + pattern.count("?") > MAX_WILDCARDS
    ):
        return None
    directory = pattern.endswith("/")
    body = pattern.strip("/")
    anchored = pattern.startswith("/") or "/" in body
    out = []
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    core = "".join(out) if body else ".*"
    prefix = "" if anchored else "(?:[^/]+/)*"
    tail = "/.+" if directory else "(?:/.+)?"
    return re.compile(prefix + core + tail)


def parse(text: str) -> CodeOwners:
    """The rules of a CODEOWNERS text (bad lines are skipped, never an error)."""
    text = text[:MAX_BYTES]
    owners = CodeOwners(sections=[[]])
    defaults: list[str] = []
    count = 0
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        section = _SECTION.match(line)
        if section:
            owners.sections.append([])
            defaults = section["owners"].split()
            continue
        tokens = line.split()
        pattern = tokens[0].replace("\\#", "#")
        regex = pattern_regex(pattern)
        if regex is None:
            continue
        users, teams = _handles(tokens[1:] or defaults)
        owners.sections[-1].append(Rule(pattern, regex, users, teams))
        count += 1
        if count >= MAX_RULES:
            break
    return owners

"""What declaring a requirement produced, shared by the layouts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TEST_GROUPS = ("test", "tests", "testing", "dev")
_TEST_PATH = re.compile(
    r"(?:^|/)(?:tests?|testing)/|(?:^|/)(?:test_[^/]*|[^/]*_test|conftest)\.py$"
)


class CannotEditError(Exception):
    """The declaration exists but cannot be edited safely; the message says why."""


@dataclass
class Declared:
    """The requirement was added: the files changed, the entry written, what a person must
    still do (a lock file to regenerate)."""

    files: list[str]
    entry: str
    notes: list[str] = field(default_factory=list)


def is_test_path(path: str) -> bool:
    """Whether a repository path is test code (a tests folder, ``test_*.py``, ``conftest``)."""
    return bool(_TEST_PATH.search(path.replace("\\", "/")))

"""CODEOWNERS read as GitHub and GitLab read it, defensively: last match wins, GitLab's
sections add up, only valid @user and @org/team handles count (no e-mail, nothing else), and
the file, its lines and its patterns are capped."""

from __future__ import annotations

import pytest

from cicd_orchestrator.codeowners import MAX_BYTES, MAX_WILDCARDS, parse, pattern_regex

GITHUB = """\
# the default owners
*                @acme/core
*.py             @alice @bob
/docs/           @acme/docs docs@example.com
build/           @carol
src/**/test_*.py @dave   # tests
/src/legacy/     # unowned
"""


@pytest.mark.parametrize(
    ("path", "users", "teams"),
    [
        ("README.md", [], ["acme/core"]),
        ("src/app.py", ["alice", "bob"], []),
        ("docs/index.md", [], ["acme/docs"]),  # the e-mail address is dropped
        ("docs/conf.py", [], ["acme/docs"]),  # the later line wins over *.py
        ("tools/build/out.txt", ["carol"], []),  # unanchored directory: at any depth
        ("src/a/b/test_x.py", ["dave"], []),
        ("src/legacy/old.txt", [], []),  # a pattern without owners: unowned
    ],
)
def test_github_rules(path: str, users: list[str], teams: list[str]) -> None:
    assert parse(GITHUB).owners_of([path]) == (users, teams)


def test_owners_of_many_paths_in_order_without_repeats() -> None:
    assert parse(GITHUB).owners_of(["a.py", "b.py", "README"]) == (["alice", "bob"], ["acme/core"])


def test_gitlab_sections_add_up_with_their_default_owners() -> None:
    text = "*.py @alice\n[Docs] @acme/writers\n*.py\n^[Optional][2] @bob\n/src/ @carol\n"
    assert parse(text).owners_of(["src/x.py"]) == (["alice", "carol"], ["acme/writers"])


@pytest.mark.parametrize(
    "owner",
    [
        "alice@example.com",  # an e-mail address
        "@",
        "@-alice",
        "@alice;rm",
        "@" + "a" * 60,  # longer than a login may be
        "@org/team/../../x",
        "<script>@x",
        "@\u202ealice",
    ],
)
def test_only_valid_handles_count(owner: str) -> None:
    assert parse(f"* {owner}\n").owners_of(["x"]) == ([], [])


def test_the_file_and_its_patterns_are_capped() -> None:
    big = "x.txt @early\n" + "# padding\n" * (MAX_BYTES // 10) + "x.txt @late\n"
    assert parse(big).owners_of(["x.txt"]) == (["early"], [])
    assert pattern_regex("*" * (MAX_WILDCARDS + 1)) is None
    assert pattern_regex("a" * 300) is None
    assert pattern_regex("!negated") is None
    # a pathological pattern against a long path ends quickly
    wild = "/" + "*/" * 4 + "**/*a*b*"
    assert parse(f"{wild} @x\n").owners_of(["a/" * 200 + "c"]) == ([], [])


def test_patterns_match_like_gitignore() -> None:
    assert pattern_regex("/README")
    assert pattern_regex("/README").fullmatch("README")
    assert not pattern_regex("/README").fullmatch("docs/README")
    assert pattern_regex("README").fullmatch("docs/README")
    assert pattern_regex("docs/*.md").fullmatch("docs/a.md")
    assert not pattern_regex("docs/*.md").fullmatch("x/docs/a.md")  # a slash anchors
    assert not pattern_regex("docs/*.md").fullmatch("docs/a/b.md")
    assert pattern_regex("docs/**/*.md").fullmatch("docs/a/b/c.md")
    assert pattern_regex("logs/").fullmatch("logs/x.log")
    assert not pattern_regex("logs/").fullmatch("logs")

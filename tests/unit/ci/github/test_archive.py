"""A run's log archive: bounded extraction (without a server), and the provider reading it
from the GitHub-compatible server, also for a job whose own log is gone."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from cicd_devkit.worlds import REPO, GitHubWorld

from cicd_orchestrator.ci.github.archive import ArchiveError, ArchiveLimits, extract_zip
from cicd_orchestrator.ci.github.mapping import archive_member_of
from cicd_orchestrator.exceptions import UnknownRunError


def test_extract_zip_limits(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("0_a.txt", "hello\n")
        zf.writestr("dir/", "")
        zf.writestr("1_job/2_step.txt", "step\n")
    files = extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "ok")
    assert sorted(p.relative_to(tmp_path / "ok").as_posix() for p in files) == [
        "0_a.txt",
        "1_job/2_step.txt",
    ]
    with pytest.raises(ArchiveError, match="members"):
        extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "n", ArchiveLimits(max_members=1))
    with pytest.raises(ArchiveError, match="not a valid zip"):
        extract_zip(io.BytesIO(b"not a zip"), tmp_path / "bad")


def test_extract_zip_selects_members_but_checks_the_whole_archive(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("0_lint.txt", "lint log\n")
        zf.writestr("1_test.txt", "test log\n")
    files = extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "one", select=lambda m: "lint" in m)
    assert [p.name for p in files] == ["0_lint.txt"]
    assert not (tmp_path / "one" / "1_test.txt").exists()
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("2_bomb.txt", b"\0" * 30_000_000)
    with pytest.raises(ArchiveError, match=r"'2_bomb.txt' inflates \d+x to 30000000 bytes"):
        extract_zip(io.BytesIO(buf.getvalue()), tmp_path / "two", select=lambda m: "lint" in m)
    assert not any((tmp_path / "two").iterdir())


def test_a_lying_central_directory_is_caught_while_inflating(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("0_a.txt", b"a" * 5000)
    data = bytearray(buf.getvalue())
    # declare 10 bytes in the central directory; the member really holds 5000
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    limits = ArchiveLimits(max_member_bytes=1000)
    with pytest.raises((ArchiveError, zipfile.BadZipFile)):
        extract_zip(io.BytesIO(bytes(data)), tmp_path / "lie", limits)
    assert not (tmp_path / "lie" / "0_a.txt").exists()


# --------------------------------------------------------------------------- the provider
def test_run_log_archive_is_extracted(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    files = gh.run_log_archive(REPO, github_world.head_run_id, github_world.tmp / "archive")
    assert sorted(p.name for p in files) == ["0_lint.txt", "1_test.txt"]
    assert "ruff" in (github_world.tmp / "archive" / "0_lint.txt").read_text()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("members", "limits", "message"),
    [
        ({"0_bomb.txt": b"\0" * 30_000_000}, None, "zip bomb"),
        ({"0_big.txt": b"log line\n" * 2000}, ArchiveLimits(max_member_bytes=10_000), "limit"),
        ({"../escape.txt": b"x"}, None, "escapes"),
    ],
    ids=["bomb", "oversized-member", "traversal"],
)
def test_malicious_log_archives_are_refused(
    github_world: GitHubWorld, members: dict[str, bytes], limits: ArchiveLimits | None, message: str
) -> None:
    run_id = github_world.head_run_id
    github_world.github.replace_run_logs(REPO, run_id, _zip(members))
    gh = github_world.provider(archive_limits=limits) if limits else github_world.provider()
    dest = github_world.tmp / f"bad-{message.replace(' ', '-')}"
    try:
        with pytest.raises(ArchiveError, match=message):
            gh.run_log_archive(REPO, run_id, dest)
    finally:
        github_world.github.state.run_archives.clear()
    assert not any(p.is_file() for p in dest.rglob("*"))


def _lint_job(github_world: GitHubWorld) -> int:
    run = github_world.local.get_run(REPO, github_world.head_run_id)
    return next(j.id for j in run.jobs if j.name == "lint")


def test_a_job_without_its_own_log_is_read_from_the_run_archive(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    job_id = _lint_job(github_world)
    fault = github_world.github.inject("error", path=rf"/actions/jobs/{job_id}/logs$", status=404)
    with gh.open_job_log(REPO, job_id) as fh:
        text = fh.read().decode()
    assert fault.fired == 1
    assert text == github_world.local.job_log_text(REPO, job_id)
    with pytest.raises(UnknownRunError), gh.open_job_log(REPO, 999_999):
        pass


def test_a_zip_bomb_in_place_of_a_job_log_is_refused_clearly(github_world: GitHubWorld) -> None:
    gh = github_world.provider()
    job_id = _lint_job(github_world)
    run_id = github_world.head_run_id
    github_world.github.inject("error", path=rf"/actions/jobs/{job_id}/logs$", status=404)
    github_world.github.replace_run_logs(REPO, run_id, _zip({"0_lint.txt": b"\0" * 30_000_000}))
    try:
        with pytest.raises(ArchiveError) as info, gh.open_job_log(REPO, job_id):
            pass
    finally:
        github_world.github.state.run_archives.clear()
    message = str(info.value)
    assert f"log of job {job_id} of {REPO}" in message
    assert f"log archive of run {run_id} was refused" in message and "zip bomb" in message


@pytest.mark.parametrize(
    ("member", "job", "expected"),
    [
        ("0_lint.txt", "lint", True),
        ("3_build (ubuntu, 3.11).txt", "build (ubuntu, 3.11)", True),
        ("2_deploy_prod.txt", "deploy/prod", True),
        ("lint/1_Set up job.txt", "lint", False),
        ("0_lint.txt", "test", False),
        ("lint.txt", "lint", False),
    ],
)
def test_archive_members_are_matched_to_their_job(member: str, job: str, expected: bool) -> None:
    assert archive_member_of(member, job) is expected

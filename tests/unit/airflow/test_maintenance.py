"""Retention: old closed sessions go into a gzipped JSON-lines archive that can be read
back, and only then are their Variables deleted; open, recent, unreadable and meanwhile
changed sessions stay."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cicd_devkit.builders import new_state

from cicd_orchestrator.airflow import maintenance, sessions_db
from cicd_orchestrator.constants import Outcome, SessionStatus
from cicd_orchestrator.serde import to_json_obj

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)


def _stored(sid: str, closed: bool, end: str | None) -> tuple[str, str]:
    state = new_state()  # started 2026-01-01
    state.session_id = sid
    state.repository = "acme/<shop>"
    if closed:
        state.status, state.outcome, state.end_time = SessionStatus.CLOSED, Outcome.FIXED, end
    return sessions_db.SESSION_PREFIX + sid, json.dumps(to_json_obj(state))


class Store:
    """Session Variables as a dict; ``delete`` removes one only if it still holds ``stored``."""

    def __init__(self, *items: tuple[str, str]) -> None:
        self.values = dict(items)
        self.archive_seen: list[bool] = []

    def rows(self) -> list[sessions_db.Row]:
        return [(k, v, lambda v=v: v) for k, v in self.values.items()]

    def delete(self, key: str, stored: str) -> bool:
        if self.values.get(key) != stored:
            return False
        del self.values[key]
        return True


def test_old_closed_sessions_are_archived_then_deleted(tmp_path: Path):
    store = Store(
        _stored("old", True, "2026-01-02T00:00:00+00:00"),
        _stored("recent", True, "2026-05-30T00:00:00+00:00"),
        _stored("open", False, None),
        ("cicd_session__broken", "{not json"),
    )
    folder = tmp_path / "archive"
    seen_before_delete: list[bool] = []

    def delete(key: str, stored: str) -> bool:
        seen_before_delete.append(any(folder.glob("*.jsonl.gz")))
        return store.delete(key, stored)

    result = maintenance.archive_sessions(store.rows(), NOW, 30, folder, delete)
    assert result.archived == ["old"]
    assert (result.kept_open, result.kept_recent) == (1, 1)
    assert result.unreadable == ["cicd_session__broken"]
    assert seen_before_delete == [True]  # the archive was complete before any deletion
    assert set(store.values) == {
        "cicd_session__recent",
        "cicd_session__open",
        "cicd_session__broken",
    }
    (archive,) = folder.glob("*.jsonl.gz")
    assert str(archive) == result.archive and not list(folder.glob("*.part"))
    (line,) = maintenance.read_archive(archive)
    assert line["session_id"] == "old" and line["repository"] == "acme/<shop>"


def test_a_session_saved_again_meanwhile_stays(tmp_path: Path):
    store = Store(_stored("old", True, "2026-01-02T00:00:00+00:00"))
    rows = store.rows()
    store.values["cicd_session__old"] += " "  # another writer saved it after the read
    result = maintenance.archive_sessions(rows, NOW, 30, tmp_path, store.delete)
    assert result.archived == [] and result.changed_meanwhile == ["old"]
    assert "cicd_session__old" in store.values


def test_nothing_to_archive_writes_no_file(tmp_path: Path):
    store = Store(_stored("open", False, None))
    result = maintenance.archive_sessions(store.rows(), NOW, 30, tmp_path / "a", store.delete)
    assert result.archive is None and not (tmp_path / "a").exists()


def test_the_archive_folder_is_configurable(tmp_path: Path):
    from cicd_orchestrator.config import ConfigError, load_config

    assert load_config({"session_archive_dir": str(tmp_path)}).archive_root() == tmp_path
    assert load_config().session_retention_days == 90
    with pytest.raises(ConfigError, match="session_retention_days"):
        load_config({"session_retention_days": 0})


class TaskVariables:
    """The Task SDK's ``Variable`` over a dict: get, set, keys(prefix), delete."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: str, description: str | None = None) -> None:
        self.values[key] = value

    def keys(self, prefix: str | None = None) -> list[str]:
        return [k for k in self.values if prefix is None or k.startswith(prefix)]

    def delete(self, key: str) -> None:
        del self.values[key]


def test_the_task_archives_through_the_task_sdk(tmp_path: Path, monkeypatch):
    from cicd_orchestrator.airflow import state_store
    from cicd_orchestrator.airflow.names import CONFIG_VARIABLE

    old_end = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=40)).isoformat()
    recent_end = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)).isoformat()
    values = dict(
        [
            _stored("old", True, old_end),
            _stored("recent", True, recent_end),
            _stored("open", False, None),
        ]
    )
    config = {"session_retention_days": 30, "session_archive_dir": str(tmp_path / "arch")}
    values[CONFIG_VARIABLE] = json.dumps(config)
    fake = TaskVariables(values)
    monkeypatch.setattr(maintenance, "_variable", lambda: fake)
    monkeypatch.setattr(state_store, "_variable", lambda: fake)

    result = maintenance.archive_task()
    assert result["archived"] == ["old"] and result["kept_open"] == 1
    assert result["kept_recent"] == 1
    assert sorted(fake.keys(sessions_db.SESSION_PREFIX)) == [
        "cicd_session__open",
        "cicd_session__recent",
    ]
    assert CONFIG_VARIABLE in fake.values
    (line,) = maintenance.read_archive(Path(result["archive"]))
    assert line["session_id"] == "old" and Path(result["archive"]).parent == tmp_path / "arch"
    # the next day's run finds nothing more to archive
    assert maintenance.archive_task()["archived"] == []

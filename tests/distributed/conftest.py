"""The distributed tests start PostgreSQL, Redis and a CeleryExecutor Airflow: they run only
when asked for by path (``make test-distributed``, i.e. ``pytest tests/distributed``), never as
part of ``pytest tests`` (``make test``)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _asked_for(config) -> bool:
    root = Path(config.invocation_params.dir)
    for arg in config.invocation_params.args:
        if arg.startswith("-"):
            continue
        path = (root / arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path.parent == HERE and not _asked_for(config):
        return True
    return None

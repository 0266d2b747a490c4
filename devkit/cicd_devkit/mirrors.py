"""The package mirror of this machine for replayed jobs: what ``CICD_JOB_ENV`` and
``CICD_JOB_READ_ONLY`` a deployment would set so that a job's ``pip install`` reads the local
index folders pip itself is configured with (``pip config list``: ``index-url``,
``extra-index-url`` and ``find-links`` that are local folders or ``file://`` URLs).

A job's network reaches no public registry here; with these, the real projects' install steps
run offline, as they would against a deployment's own mirror.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlparse

_KEYS = {"index-url": "PIP_INDEX_URL", "extra-index-url": "PIP_EXTRA_INDEX_URL"}


def _local_folder(value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme == "file":
        path = parsed.path
    elif not parsed.scheme and value.startswith("/"):
        path = value
    else:
        return None
    path = path.rstrip("/")
    return path if os.path.isdir(path) else None


def _pip_config() -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            name = key.rsplit(".", 1)[-1]
            found.setdefault(name, []).extend(value.strip().strip("'\"").split())
    return found


def _mount_point(folder: str) -> str:
    """The folder to show: a ``.../simple`` index's parent (its files live beside it)."""
    return os.path.dirname(folder) if os.path.basename(folder) == "simple" else folder


def job_mirror_env() -> dict[str, str]:
    """``CICD_JOB_ENV`` and ``CICD_JOB_READ_ONLY`` for this machine's local package folders
    (empty when pip reads no local folder)."""
    config = _pip_config()
    env: dict[str, str] = {}
    folders: list[str] = []
    urls: list[str] = []
    for key in ("index-url", "extra-index-url"):
        for value in config.get(key, []):
            folder = _local_folder(value)
            if folder:
                urls.append(f"file://{folder}")
                folders.append(_mount_point(folder))
    links = list(dict.fromkeys(f for v in config.get("find-links", []) if (f := _local_folder(v))))
    if urls:
        env[_KEYS["index-url"]] = urls[0]
        if urls[1:]:
            env[_KEYS["extra-index-url"]] = " ".join(urls[1:])
    if links:
        env["PIP_FIND_LINKS"] = " ".join(links)
        folders.extend(links)
    if not env:
        return {}
    return {
        "CICD_JOB_ENV": json.dumps(env),
        "CICD_JOB_READ_ONLY": os.pathsep.join(dict.fromkeys(folders)),
    }

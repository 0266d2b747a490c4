"""The package, imported once in the components that fork task processes.

Airflow runs each task in a process forked from a long-lived one: the LocalExecutor's workers,
which the scheduler forks at its start, and the Celery worker's pool. What that process
imported before the fork, every task process has at no cost. What a task imports itself, every
task pays for again: the DAG file's parse (the factory), the log reader's and the repair tools'
regular expressions and tables (and the log reader's pattern library and prefilter, made
after the imports: :data:`WARM_UPS`), the CI clients. That was most of a task's own CPU time.

``include/airflow_local_settings.py``, which Airflow imports at the start of every component,
calls :func:`preload`; it imports in the scheduler and the Celery worker only. A change to the
package then reaches tasks when those restart (as a deployment restarts them); with
``CICD_PRELOAD=0`` each task imports the package afresh instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from collections.abc import Iterable, Sequence

log = logging.getLogger(__name__)

#: the CI clients a task builds from its connection (imported lazily by the package itself)
CLIENTS = ("github", "gitlab", "jenkins", "airflow.providers.github.hooks.github")

#: what else is made once before the fork, after the imports: the log reader's pattern
#: library and prefilter (loaded and compiled on first use otherwise, in every task)
WARM_UPS = ("cicd_orchestrator.logs.analyze:warm",)

#: the Airflow commands whose process forks task processes
FORKING_COMMANDS = (("scheduler",), ("celery", "worker"))

_OFF = {"0", "false", "no", "off"}


def forks_tasks(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (an ``airflow`` command line) starts a component that forks tasks."""
    words = tuple(a for a in argv[1:] if not a.startswith("-"))
    return any(words[: len(command)] == command for command in FORKING_COMMANDS)


def package_modules() -> list[str]:
    """Every module of the package."""
    import cicd_orchestrator

    prefix = cicd_orchestrator.__name__ + "."
    return [m.name for m in pkgutil.walk_packages(cicd_orchestrator.__path__, prefix)]


def preload(argv: Sequence[str], modules: Iterable[str] | None = None) -> list[str]:
    """Import ``modules`` (the package and the CI clients) when ``argv`` forks tasks; returns
    what was imported. A module that fails to import is logged and left to the task that
    needs it, which then fails with the error; the component starts all the same."""
    if os.environ.get("CICD_PRELOAD", "1").strip().lower() in _OFF or not forks_tasks(argv):
        return []
    imported = []
    for name in modules if modules is not None else [*package_modules(), *CLIENTS]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a component starts whatever a module does
            log.warning("preload: %s not imported: %s: %s", name, type(exc).__name__, exc)
        else:
            imported.append(name)
    for target in WARM_UPS:
        module, _, function = target.partition(":")
        if module not in imported:
            continue
        try:
            getattr(importlib.import_module(module), function)()
        except Exception as exc:  # left to the task that needs it, as an import is
            log.warning("preload: %s failed: %s: %s", target, type(exc).__name__, exc)
    return imported

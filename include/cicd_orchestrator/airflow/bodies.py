"""Task bodies named by module and function, imported when a task runs.

A DAG file then parses without importing the domain (the stages, the pattern library, the
repair tools): the DAG processor and every task start pay only for the DAG's shape, and a
task imports what its own body needs.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

TASKS = "cicd_orchestrator.airflow.tasks"
MONITOR = "cicd_orchestrator.airflow.monitor"


class Body:
    """``module.name`` (with ``bound`` leading arguments), imported at the first call.

    Airflow hands a callable without named parameters the whole context; the body gets the
    part its own signature asks for, by Airflow's rule (``KeywordParameters``)."""

    def __init__(self, module: str, name: str, *bound: Any) -> None:
        self.module = module
        self.name = name
        self.bound = bound
        self.__name__ = name
        self.__qualname__ = name

    def resolve(self) -> Callable[..., Any]:
        fn = getattr(importlib.import_module(self.module), self.name)
        return functools.partial(fn, *self.bound) if self.bound else fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from airflow.sdk.bases.decorator import KeywordParameters

        fn = self.resolve()
        return fn(*args, **KeywordParameters.determine(fn, args, kwargs).unpacking())

    def __repr__(self) -> str:
        return f"Body({self.module}.{self.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Body) and (self.module, self.name, self.bound) == (
            other.module,
            other.name,
            other.bound,
        )

    def __hash__(self) -> int:
        return hash((self.module, self.name, self.bound))


def task(name: str, *bound: Any) -> Body:
    """A body of ``airflow.tasks``."""
    return Body(TASKS, name, *bound)


def monitor(name: str) -> Body:
    """A body of ``airflow.monitor``."""
    return Body(MONITOR, name)

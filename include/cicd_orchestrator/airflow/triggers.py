"""Deferrable trigger that polls a CI provider until what an attempt published is finished.

It runs in the triggerer (importable from the package, not the DAG folder) and holds no
worker slot while CI runs. The watch ends early when the session's failure is superseded
meanwhile (the monitor then closes the session as such).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from cicd_orchestrator.airflow.handoff import WatchTarget, from_xcom, xcom_of
from cicd_orchestrator.ci.base import CIProvider
from cicd_orchestrator.exceptions import CicdError
from cicd_orchestrator.models import CIState

GONE_POLLS = 3
"""Polls in a row that must find the repository or run gone before the watch ends."""


def superseded_state(provider: CIProvider, watch: WatchTarget) -> CIState | None:
    """The end of the watch when the session's failure is superseded meanwhile (a newer
    commit on its branch, its failed runs green by themselves), else None. A provider that
    cannot answer leaves the watch as it is."""
    check = watch.supersession
    if check is None:
        return None
    try:
        runs = provider.list_runs(watch.repository, branch=check.branch)
    except CicdError:
        return None
    reason = check.reason(runs)
    return None if reason is None else CIState(True, False, reason, superseded=True)


class CIStatusTrigger(BaseTrigger):
    """Poll CI every ``poll_interval`` seconds of the target until done or timed out.

    A repository or run the provider no longer knows ends the watch (red, ``gone``) once
    :data:`GONE_POLLS` polls in a row say so, instead of polling until the timeout.
    """

    def __init__(self, target: dict[str, Any]) -> None:
        super().__init__()
        self.target = target

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("cicd_orchestrator.airflow.triggers.CIStatusTrigger", {"target": self.target})

    def _watch(self) -> WatchTarget:
        watch = from_xcom(WatchTarget, self.target)
        if watch is None:
            raise ValueError("the CI watch has no target")
        return watch

    def poll_once(self) -> CIState:
        """One synchronous poll (the sensor's check before it defers)."""
        from cicd_orchestrator.airflow.runtime import provider_for
        from cicd_orchestrator.config import load_config
        from cicd_orchestrator.stages.monitoring import watch_state

        watch = self._watch()
        provider = provider_for(watch.provider, load_config(watch.config))
        state = watch_state(provider, watch.repository, watch.head_sha, watch.published)
        if state.done or state.gone or watch.supersession is None:
            return state
        return superseded_state(provider, watch) or state

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watch = self._watch()
        deadline = time.monotonic() + watch.timeout
        polls = gone = 0
        while True:
            # the sensor has just polled: wait first, so that the event never races the
            # deferral being recorded
            await asyncio.sleep(watch.poll_interval)
            polls += 1
            try:
                state = await asyncio.to_thread(self.poll_once)
            except Exception as exc:  # a provider hiccup: try again until the deadline
                self.log.warning("CI status poll failed: %s", exc)
                state = CIState(False, False, f"poll failed: {exc}")
            gone = gone + 1 if state.gone else 0
            if gone:
                self.log.warning("%s (%d of %d polls)", state.detail, gone, GONE_POLLS)
            final = self._final(state, gone, deadline, watch.timeout)
            if final is not None:
                yield TriggerEvent(xcom_of(dataclasses.replace(final, polls=polls)))
                return

    @staticmethod
    def _final(state: CIState, gone: int, deadline: float, timeout: float) -> CIState | None:
        """The event to end the watch with, or None to poll again."""
        if gone >= GONE_POLLS:
            return dataclasses.replace(state, done=True)
        if state.done:
            return state
        if time.monotonic() >= deadline:
            return CIState(True, False, f"CI did not finish within {timeout:.0f}s", timed_out=True)
        return None

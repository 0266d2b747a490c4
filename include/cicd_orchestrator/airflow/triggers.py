"""Deferrable trigger that polls a CI provider until what an attempt published is finished.

It runs in the triggerer (importable from the package, not the DAG folder) and holds no
worker slot while CI runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

GONE_POLLS = 3
"""Polls in a row that must find the repository or run gone before the watch ends."""


class CIStatusTrigger(BaseTrigger):
    """Poll ``pipeline.ci_state`` every ``poll_interval`` seconds until done or timed out.

    A repository or run the provider no longer knows ends the watch (red, ``gone``) once
    :data:`GONE_POLLS` polls in a row say so, instead of polling until the timeout.
    """

    def __init__(
        self,
        provider: str,
        config: dict[str, Any],
        repository: str,
        head_sha: str,
        published: dict[str, Any],
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
    ) -> None:
        super().__init__()
        self.provider = provider
        self.config = config
        self.repository = repository
        self.head_sha = head_sha
        self.published = published
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "cicd_orchestrator.airflow.triggers.CIStatusTrigger",
            {
                "provider": self.provider,
                "config": self.config,
                "repository": self.repository,
                "head_sha": self.head_sha,
                "published": self.published,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
            },
        )

    def poll_once(self) -> dict[str, Any]:
        """One synchronous poll (the sensor's check before it defers)."""
        return self._poll()

    def _poll(self) -> dict[str, Any]:
        from cicd_orchestrator.ci.registry import make_provider
        from cicd_orchestrator.config import load_config
        from cicd_orchestrator.exceptions import NotFoundError
        from cicd_orchestrator.models import Published
        from cicd_orchestrator.pipeline import ci_state
        from cicd_orchestrator.serde import from_json_obj, to_json_obj
        from cicd_orchestrator.session import not_found_reason

        provider = make_provider(self.provider, load_config(self.config))
        published = from_json_obj(Published, self.published)
        try:
            result = ci_state(provider, self.repository, self.head_sha, published)
        except NotFoundError as exc:
            return {
                "done": False,
                "green": False,
                "gone": True,
                "detail": not_found_reason(self.repository, str(exc)),
                "signatures": [],
            }
        data: dict[str, Any] = to_json_obj(result)
        return data

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = time.monotonic() + self.timeout
        polls = 0
        gone = 0
        while True:
            # the sensor has just polled: wait first, so that the event never races the
            # deferral being recorded
            await asyncio.sleep(self.poll_interval)
            polls += 1
            try:
                result = await asyncio.to_thread(self._poll)
            except Exception as exc:  # a provider hiccup: try again until the deadline
                self.log.warning("CI status poll failed: %s", exc)
                result = {"done": False, "green": False, "detail": f"poll failed: {exc}"}
            gone = gone + 1 if result.get("gone") else 0
            if gone:
                self.log.warning("%s (%d of %d polls)", result.get("detail"), gone, GONE_POLLS)
            if gone >= GONE_POLLS:
                yield TriggerEvent({**result, "done": True, "polls": polls})
                return
            if result.get("done"):
                yield TriggerEvent({**result, "polls": polls})
                return
            if time.monotonic() >= deadline:
                yield TriggerEvent(
                    {
                        "done": True,
                        "green": False,
                        "timed_out": True,
                        "detail": f"CI did not finish within {self.timeout:.0f}s",
                        "signatures": [],
                        "polls": polls,
                    }
                )
                return

"""What the orchestrator needs of an LLM agent, and how it is given one: the Airflow glue
builds agents from connections, the domain only calls them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class PatchAgent(Protocol):
    """What the LLM fixer needs of a pydantic-ai ``Agent``."""

    def run_sync(self, user_prompt: str) -> Any: ...


#: (connection id, instructions) -> agent
AgentFactory = Callable[[str, str], PatchAgent]

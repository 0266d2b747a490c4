"""What a workflow run is, and how its steps see it: the ``github`` context and the
``GITHUB_*`` variables (one set of values, so the two always agree).

The event that started the run comes with its payload (``github.event``): a push's ``ref``,
``before`` and ``after``; a pull request's ``number``, ``action`` and ``pull_request`` (its
``head`` and ``base`` with ``ref`` and ``sha``), from which ``github.head_ref`` and
``github.base_ref`` come, as on GitHub (:func:`pull_request_payload`). A payload travels
with the event's name as an :class:`EventName`, so it reaches every place a run's event
name goes.

``github.token`` is the job's ``GITHUB_TOKEN``: a random value made for one job
(:func:`new_job_token`), never a credential of the orchestrator; the runner that runs the
job has it among its secrets (``secrets.GITHUB_TOKEN``), so the job log masks it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cicd_orchestrator.actions.workflow import Workflow

RUNNER_NAME = "cicd-orchestrator-local"
RUNNER_OS = "Linux"
RUNNER_ARCH = "X64"
_ZERO_SHA = "0" * 40
#: the variables of a step's environment taken from the ``github`` context (in this order)
_GITHUB_VARIABLES = (
    ("GITHUB_SHA", "sha"),
    ("GITHUB_REF", "ref"),
    ("GITHUB_REF_NAME", "ref_name"),
    ("GITHUB_REF_TYPE", "ref_type"),
    ("GITHUB_RUN_ID", "run_id"),
    ("GITHUB_RUN_NUMBER", "run_number"),
    ("GITHUB_RUN_ATTEMPT", "run_attempt"),
    ("GITHUB_REPOSITORY", "repository"),
    ("GITHUB_REPOSITORY_OWNER", "repository_owner"),
    ("GITHUB_WORKSPACE", "workspace"),
    ("GITHUB_JOB", "job"),
    ("GITHUB_EVENT_NAME", "event_name"),
    ("GITHUB_WORKFLOW", "workflow"),
    ("GITHUB_ACTOR", "actor"),
    ("GITHUB_SERVER_URL", "server_url"),
    ("GITHUB_HEAD_REF", "head_ref"),
    ("GITHUB_BASE_REF", "base_ref"),
)
#: the secret (and ``github.token``) that holds a job's token
TOKEN_SECRET = "GITHUB_TOKEN"
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


def new_job_token() -> str:
    """A random token for one job (shaped as GitHub's installation tokens, never valid)."""
    return "ghs_" + secrets.token_hex(18)


class EventName(str):
    """An event's name (``push``, ``pull_request``...) that carries the event's payload."""

    payload: dict[str, Any]

    def __new__(cls, name: str, payload: Mapping[str, Any] | None = None) -> EventName:
        self = super().__new__(cls, name)
        self.payload = dict(payload or {})
        return self


def pull_request_payload(
    number: int, action: str, head_ref: str, head_sha: str, base_ref: str, base_sha: str
) -> dict[str, Any]:
    """The payload of a pull request event, with the fields GitHub's has that a workflow
    reads most (``github.event.number``, ``github.event.pull_request.head.ref``...)."""
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"ref": head_ref, "sha": head_sha},
            "base": {"ref": base_ref, "sha": base_sha},
        },
    }


@dataclass
class RunInfo:
    """What a workflow run is: the commit, the ref and the run's numbers."""

    git_dir: str
    sha: str
    workflow: Workflow
    ref: str
    repository: str
    run_id: int
    run_number: int
    run_attempt: int
    event: str
    log_dir: Path
    event_payload: Mapping[str, Any] | None = None  # default: an EventName's payload
    token: str = ""  # the job's GITHUB_TOKEN (a run's info has none)

    def __post_init__(self) -> None:
        if self.event_payload is None and isinstance(self.event, EventName):
            self.event_payload = self.event.payload

    @property
    def ref_name(self) -> str:
        for prefix in ("refs/heads/", "refs/tags/", "refs/pull/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix) :]
        return self.ref

    def event_context(self) -> dict[str, Any]:
        """``github.event``: the payload (a push's ``ref``/``after``/``before`` by default)."""
        event: dict[str, Any] = {}
        if self.event not in PULL_REQUEST_EVENTS:
            event = {"ref": self.ref, "after": self.sha, "before": _ZERO_SHA}
        event.update(self.event_payload or {})
        return event

    def _pull_ref(self, side: str) -> str:
        if self.event not in PULL_REQUEST_EVENTS:
            return ""
        pull = (self.event_payload or {}).get("pull_request")
        part = pull.get(side) if isinstance(pull, Mapping) else None
        return str(part.get("ref") or "") if isinstance(part, Mapping) else ""

    def github_context(self, workspace: str = "", job: str = "") -> dict[str, Any]:
        owner = self.repository.split("/")[0]
        return {
            "sha": self.sha,
            "ref": self.ref,
            "ref_name": self.ref_name,
            "ref_type": "tag" if self.ref.startswith("refs/tags/") else "branch",
            "repository": self.repository,
            "repository_owner": owner,
            "run_id": str(self.run_id),
            "run_number": str(self.run_number),
            "run_attempt": str(self.run_attempt),
            "event_name": str(self.event),
            "workflow": self.workflow.name,
            "workspace": workspace,
            "job": job,
            "actor": owner,
            "server_url": "local://",
            "action": "",
            "head_ref": self._pull_ref("head"),
            "base_ref": self._pull_ref("base"),
            "event": self.event_context(),
            "token": self.token,
        }

    def github_env(self, workspace: str, job: str) -> dict[str, str]:
        """The variables every step of a job gets: ``CI``, ``GITHUB_ACTIONS`` and the
        ``GITHUB_*`` values of the ``github`` context."""
        github = self.github_context(workspace, job)
        return {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            **{name: github[key] for name, key in _GITHUB_VARIABLES},
        }

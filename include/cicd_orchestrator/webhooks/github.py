"""GitHub webhook deliveries: signature check, de-duplication, and the events that open a
session (pure: no Airflow, no network). The orchestrator's own runs (its fix branches, the
commits it authored) are ignored."""

from __future__ import annotations

import collections
import hashlib
import hmac
import threading
from dataclasses import dataclass
from typing import Any

from cicd_orchestrator import branches
from cicd_orchestrator.constants import FIX_BRANCH_PREFIX, Priority, failed_run_conclusions
from cicd_orchestrator.exceptions import ConfError
from cicd_orchestrator.session import branch_priority

SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADER = "X-GitHub-Delivery"
EVENT_HEADER = "X-GitHub-Event"
SECRET_VARIABLE = "cicd_webhook_secret"


def verify_signature(secret: str | None, body: bytes, header: str | None) -> bool:
    """``sha256=<hex>`` HMAC of the raw body with the shared secret, compared in constant time."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookRequest:
    """A session to open, from one delivery."""

    repository: str
    branch: str
    priority: Priority
    event: str
    delivery: str
    run_id: int | None = None
    head_sha: str | None = None
    provider: str = "github"

    def conf(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "repository": self.repository,
            "provider": self.provider,
            "priority": self.priority.value,
        }
        if self.run_id is not None:
            conf["run_id"] = self.run_id
        if self.head_sha:
            conf["head_sha"] = self.head_sha
        return conf


def _repo(payload: dict[str, Any]) -> tuple[str, str]:
    repo = payload.get("repository")
    if not isinstance(repo, dict) or not isinstance(repo.get("full_name"), str):
        raise ConfError("payload.repository.full_name is missing")
    return repo["full_name"], str(repo.get("default_branch") or "main")


def _failed(conclusion: object, cancelled_is_failure: bool) -> bool:
    return conclusion in {c.value for c in failed_run_conclusions(cancelled_is_failure)}


def parse_event(
    event: str,
    delivery: str,
    payload: object,
    cancelled_is_failure: bool = False,
    fix_branch_prefix: str = FIX_BRANCH_PREFIX,
) -> tuple[WebhookRequest | None, str]:
    """The session a delivery asks for, or None and why it is ignored (a run of the
    orchestrator's own is).

    Raises ConfError when the payload is not what the event promises (a 400 answer).
    """
    wanted, reason = _requested(event, delivery, payload, cancelled_is_failure)
    if wanted is None:
        return None, reason
    return own_run_ignored(wanted, _head_author(payload), fix_branch_prefix)


def own_run_ignored(
    wanted: WebhookRequest, author_email: str, fix_branch_prefix: str
) -> tuple[WebhookRequest | None, str]:
    """``wanted``, or None and why when it is a run of the orchestrator's own."""
    why = branches.own_run(wanted.branch, author_email, fix_branch_prefix)
    if why:
        return None, f"ignored: a run of the orchestrator's own: {why}"
    return wanted, "ok"


def _head_author(payload: Any) -> str:
    """The e-mail of the author of the head commit a workflow run or check suite names."""
    for key in ("workflow_run", "check_suite"):
        item = payload.get(key)
        head = item.get("head_commit") if isinstance(item, dict) else None
        author = head.get("author") if isinstance(head, dict) else None
        if isinstance(author, dict):
            return str(author.get("email") or "")
    return ""


def _requested(  # noqa: C901 - one branch per event kind
    event: str, delivery: str, payload: object, cancelled_is_failure: bool
) -> tuple[WebhookRequest | None, str]:
    if not isinstance(payload, dict):
        raise ConfError("the payload must be a JSON object")
    if event == "ping":
        return None, "ping"
    if event not in ("workflow_run", "check_suite", "deployment_status"):
        return None, f"event {event!r} is not handled"
    repository, default = _repo(payload)
    if event == "workflow_run":
        run = payload.get("workflow_run")
        if not isinstance(run, dict) or not isinstance(run.get("id"), int):
            raise ConfError("payload.workflow_run.id is missing")
        if payload.get("action") != "completed":
            return None, f"workflow_run {payload.get('action')}: not completed"
        if not _failed(run.get("conclusion"), cancelled_is_failure):
            return None, f"workflow_run concluded {run.get('conclusion')}"
        branch = str(run.get("head_branch") or "")
        return WebhookRequest(
            repository,
            branch,
            branch_priority(branch, default),
            event,
            delivery,
            run_id=run["id"],
            head_sha=run.get("head_sha"),
        ), "ok"
    if event == "check_suite":
        suite = payload.get("check_suite")
        if not isinstance(suite, dict):
            raise ConfError("payload.check_suite is missing")
        if payload.get("action") != "completed":
            return None, f"check_suite {payload.get('action')}: not completed"
        if not _failed(suite.get("conclusion"), cancelled_is_failure):
            return None, f"check_suite concluded {suite.get('conclusion')}"
        if not isinstance(suite.get("head_sha"), str):
            raise ConfError("payload.check_suite.head_sha is missing")
        branch = str(suite.get("head_branch") or "")
        return WebhookRequest(
            repository,
            branch,
            branch_priority(branch, default),
            event,
            delivery,
            head_sha=suite["head_sha"],
        ), "ok"
    status = payload.get("deployment_status")
    deployment = payload.get("deployment")
    if not isinstance(status, dict) or not isinstance(deployment, dict):
        raise ConfError("payload.deployment_status / payload.deployment is missing")
    if status.get("state") not in ("failure", "error"):
        return None, f"deployment_status {status.get('state')}"
    if not isinstance(deployment.get("sha"), str):
        raise ConfError("payload.deployment.sha is missing")
    branch = str(deployment.get("ref") or "")
    return WebhookRequest(
        repository,
        branch,
        branch_priority(branch, default),
        event,
        delivery,
        head_sha=deployment["sha"],
    ), "ok"


class DeliveryCache:
    """The delivery ids answered recently (bounded), to answer a replay without a second
    session. A delivery is recorded only once its session was safely triggered, so a
    redelivery after a failed trigger is tried again."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def known(self, delivery: str) -> bool:
        """True if ``delivery`` was recorded before."""
        with self._lock:
            if delivery in self._seen:
                self._seen.move_to_end(delivery)
                return True
            return False

    def record(self, delivery: str) -> None:
        with self._lock:
            self._seen[delivery] = None
            self._seen.move_to_end(delivery)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)

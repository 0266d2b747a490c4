"""GitLab webhook deliveries: token check, delivery id, and the events that open a session
(pure: no Airflow, no network).

GitLab sends the secret token configured on the webhook in ``X-Gitlab-Token`` (no signature
of the body); it is compared in constant time with the Airflow Variable
``cicd_gitlab_webhook_token``. Each delivery carries ``X-Gitlab-Event-UUID`` (one per event,
kept by a redelivery) and ``X-Gitlab-Webhook-UUID`` (one per webhook); the first is the
delivery id for de-duplication, the second stands in on an instance that does not send it.

Events (``X-Gitlab-Event``):

- ``Pipeline Hook`` with ``object_attributes.status`` ``failed`` (``canceled`` too when
  cancelled runs count as failures): a session for the pipeline (a merge request pipeline's
  branch is its merge request's source branch);
- ``Job Hook`` of a failed job that may not fail (``build_allow_failure`` false): a session for
  the job's pipeline, opened as soon as the job fails; the pipeline's own hook later names
  the same pipeline and does not open a second session (one session per push: project,
  ref and commit);
- anything else is acknowledged and ignored, and so is a run of the orchestrator's own (its
  fix branch, a commit it authored).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from cicd_orchestrator.constants import FIX_BRANCH_PREFIX
from cicd_orchestrator.exceptions import ConfError
from cicd_orchestrator.session import branch_priority
from cicd_orchestrator.webhooks.github import WebhookRequest, own_run_ignored

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Gitlab-Token"
EVENT_HEADER = "X-Gitlab-Event"
EVENT_UUID_HEADER = "X-Gitlab-Event-UUID"
WEBHOOK_UUID_HEADER = "X-Gitlab-Webhook-UUID"
TOKEN_VARIABLE = "cicd_gitlab_webhook_token"
PROVIDER = "gitlab"
PIPELINE_EVENT = "Pipeline Hook"
JOB_EVENT = "Job Hook"


def verify_token(expected: str | None, sent: str | None) -> bool:
    """The ``X-Gitlab-Token`` header against the configured token, in constant time; no
    configured token refuses every delivery."""
    if not expected or not sent:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), sent.encode("utf-8"))


def delivery_id(event_uuid: str | None, webhook_uuid: str | None) -> str | None:
    """The id that identifies a delivery (a redelivery keeps it), or None."""
    for value in (event_uuid, webhook_uuid):
        if value and value.strip():
            return f"gitlab:{value.strip()}"
    return None


def _sha(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) < 7:
        raise ConfError(f"{what} must be a commit sha, got {value!r}")
    return value


def _project_path(payload: dict[str, Any]) -> tuple[str, str]:
    """(path with namespace, default branch) of the event's project."""
    project = payload.get("project")
    if isinstance(project, dict) and isinstance(project.get("path_with_namespace"), str):
        return project["path_with_namespace"], str(project.get("default_branch") or "main")
    repository = payload.get("repository")  # a Job Hook of an older GitLab: no project object
    if isinstance(repository, dict) and isinstance(repository.get("homepage"), str):
        path = urlsplit(repository["homepage"]).path.strip("/")
        if path.count("/") >= 1:
            return path, "main"
    raise ConfError("payload.project.path_with_namespace is missing")


def _positive_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfError(f"{what} must be a positive integer, got {value!r}")
    return value


def parse_gitlab_event(
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
    if not isinstance(payload, dict):
        raise ConfError("the payload must be a JSON object")
    failed = {"failed"} | ({"canceled"} if cancelled_is_failure else set())
    if event == PIPELINE_EVENT:
        attrs = payload.get("object_attributes")
        if not isinstance(attrs, dict):
            raise ConfError("payload.object_attributes is missing")
        run_id = _positive_int(attrs.get("id"), "payload.object_attributes.id")
        repository, default = _project_path(payload)
        status = attrs.get("status")
        if status not in failed:
            return None, f"pipeline {run_id} is {status}"
        branch = _branch(str(attrs.get("ref") or ""), payload.get("merge_request"))
        sha = _sha(attrs.get("sha"), "payload.object_attributes.sha")
    elif event == JOB_EVENT:
        run_id = _positive_int(payload.get("pipeline_id"), "payload.pipeline_id")
        repository, default = _project_path(payload)
        status = payload.get("build_status")
        if status not in failed:
            return None, f"job {payload.get('build_name')!r} is {status}"
        if payload.get("build_allow_failure"):
            return None, f"job {payload.get('build_name')!r} may fail (allow_failure)"
        branch = str(payload.get("ref") or "")
        sha = _sha(payload.get("sha"), "payload.sha")
    else:
        return None, f"event {event!r} is not handled"
    if repository.count("/") != 1:
        return None, f"project {repository!r} is nested in subgroups (not supported yet)"
    request = WebhookRequest(
        repository,
        branch,
        branch_priority(branch, default),
        event,
        delivery,
        run_id=run_id,
        head_sha=sha,
        provider=PROVIDER,
    )
    return own_run_ignored(request, _head_author(payload), fix_branch_prefix)


def _branch(ref: str, merge_request: object) -> str:
    """The branch of a pipeline: its ref, or for a merge request pipeline (which runs on
    ``refs/merge-requests/<iid>/head`` or ``.../merge``) its merge request's source branch."""
    if ref.startswith("refs/merge-requests/") and isinstance(merge_request, dict):
        source = merge_request.get("source_branch")
        if isinstance(source, str) and source:
            return source
    return ref


def _head_author(payload: dict[str, Any]) -> str:
    """The e-mail of the author of the commit a pipeline or job hook names."""
    commit = payload.get("commit")
    if not isinstance(commit, dict):
        return ""
    author = commit.get("author")
    if isinstance(author, dict):  # Pipeline Hook
        return str(author.get("email") or "")
    return str(commit.get("author_email") or "")  # Job Hook

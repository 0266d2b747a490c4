"""Jenkins REST payloads built from the documented examples in ``fixtures/``.

Each fixture is an example answer of Jenkins' remote access API (``/api/json`` of the
controller, an organization folder, a multibranch project, a Pipeline job, a Pipeline build,
a queue item, the crumb issuer, a user) or of the Pipeline stage view plugin
(``wfapi/describe`` of a build and of a stage). A payload is that example with the server's
URLs and the real values filled in. ``apply_tree`` implements the ``tree`` query parameter
(``jobs[name,builds[number,result]{0,10}]``) as Jenkins does: only the named fields (plus
``_class``) are kept.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from cicd_devkit.servers.jenkins.console import RESULTS, Rendered, StageView
from cicd_devkit.servers.rest import read_fixture
from cicd_orchestrator.constants import Conclusion

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE_URL = "http://jenkins.example.com/"
WORKFLOW_RUN = "org.jenkinsci.plugins.workflow.job.WorkflowRun"
WORKFLOW_JOB = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
MULTIBRANCH = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
ORG_FOLDER = "jenkins.branch.OrganizationFolder"


def fixture_text(name: str) -> str:
    return read_fixture(FIXTURES, name)


def fixture(name: str, base_url: str) -> dict[str, Any]:
    data = json.loads(fixture_text(f"{name}.json").replace(EXAMPLE_URL, base_url))
    assert isinstance(data, dict)
    return data


def result_of(conclusion: Conclusion | None) -> str:
    """The Jenkins result of a completed attempt's conclusion."""
    return RESULTS.get(conclusion or Conclusion.FAILURE, "FAILURE")


# --------------------------------------------------------------------------- tree
def parse_tree(spec: str) -> dict[str, Any]:
    """``a,b[c,d]{0,5}`` -> {"a": None, "b": ({"c": None, "d": None}, (0, 5))}."""
    out, _ = _parse_fields(spec.replace(" ", ""), 0)
    return out


def _parse_fields(spec: str, i: int) -> tuple[dict[str, Any], int]:
    fields: dict[str, Any] = {}
    while i < len(spec):
        j = i
        while j < len(spec) and spec[j] not in ",[]{":
            j += 1
        name, sub, rng = spec[i:j], None, None
        if j < len(spec) and spec[j] == "[":
            sub, j = _parse_fields(spec, j + 1)
            j += 1  # the closing bracket
        if j < len(spec) and spec[j] == "{":
            end = spec.index("}", j)
            lo, _, hi = spec[j + 1 : end].partition(",")
            rng = (int(lo or 0), int(hi) if hi else None)
            j = end + 1
        if name:
            fields[name] = (sub, rng) if (sub is not None or rng is not None) else None
        if j < len(spec) and spec[j] == "]":
            return fields, j
        i = j + 1
    return fields, i


def apply_tree(data: Any, tree: dict[str, Any]) -> Any:
    if isinstance(data, list):
        return [apply_tree(item, tree) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    if "_class" in data:
        out["_class"] = data["_class"]
    for name, spec in tree.items():
        if name not in data:
            continue
        value = data[name]
        if spec is None:
            out[name] = _leaf(value)
            continue
        sub, rng = spec
        if isinstance(value, list) and rng is not None:
            value = value[rng[0] : rng[1]]
        out[name] = apply_tree(value, sub) if sub is not None else _leaf(value)
    return out


def _leaf(value: Any) -> Any:
    """A field named without a sub-tree: objects are reduced to their class, as Jenkins does."""
    if isinstance(value, dict):
        return {"_class": value["_class"]} if "_class" in value else {}
    if isinstance(value, list):
        return [_leaf(v) for v in value]
    return value


# --------------------------------------------------------------------------- builders
def build_ref(url: str, number: int) -> dict[str, Any]:
    return {"_class": WORKFLOW_RUN, "number": number, "url": url}


def build_payload(
    base: str,
    *,
    url: str,
    full_display: str,
    number: int,
    queue_id: int,
    cause: dict[str, Any],
    sha: str,
    branch: str,
    remote: str,
    building: bool,
    result: str | None,
    timestamp: int,
    duration: int,
    previous: dict[str, Any] | None,
    following: dict[str, Any] | None,
) -> dict[str, Any]:
    data = fixture("workflow_run", base)
    revision = {"SHA1": sha, "branch": [{"SHA1": sha, "name": branch}]}
    for action in data["actions"]:
        cls = action.get("_class")
        if cls == "hudson.model.CauseAction":
            action["causes"] = [cause]
        elif cls == "hudson.plugins.git.util.BuildData":
            action["lastBuiltRevision"] = copy.deepcopy(revision)
            action["buildsByBranchName"] = {
                branch: {
                    "_class": "hudson.plugins.git.util.Build",
                    "buildNumber": number,
                    "buildResult": None,
                    "marked": copy.deepcopy(revision),
                    "revision": copy.deepcopy(revision),
                }
            }
            action["remoteUrls"] = [remote]
    data.update(
        building=building,
        inProgress=building,
        displayName=f"#{number}",
        fullDisplayName=f"{full_display} #{number}",
        id=str(number),
        number=number,
        queueId=queue_id,
        result=result,
        timestamp=timestamp,
        duration=duration,
        estimatedDuration=max(duration, 1000),
        url=url,
        previousBuild=previous,
        nextBuild=following,
    )
    return data


def _stage_json(build_path: str, stage: StageView) -> dict[str, Any]:
    return {
        "_links": {"self": {"href": f"{build_path}execution/node/{stage.id}/wfapi/describe"}},
        "id": str(stage.id),
        "name": stage.name,
        "execNode": "",
        "status": stage.status,
        "startTimeMillis": stage.start_ms,
        "durationMillis": stage.duration_ms,
        "pauseDurationMillis": 0,
    }


def describe_payload(
    build_path: str, number: int, rendered: Rendered, start: int, end: int, building: bool
) -> dict[str, Any]:
    """``wfapi/describe`` of a build (``build_path``: the build's URL path, with slashes)."""
    failed = any(s.status in ("FAILED", "ABORTED") for s in rendered.stages)
    status = "IN_PROGRESS" if building else ("FAILED" if failed else "SUCCESS")
    if rendered.result == "ABORTED":
        status = "ABORTED"
    elif rendered.result == "FAILURE":
        status = "FAILED"
    return {
        "_links": {"self": {"href": f"{build_path}wfapi/describe"}},
        "id": str(number),
        "name": f"#{number}",
        "status": status,
        "startTimeMillis": start,
        "endTimeMillis": end,
        "durationMillis": max(0, end - start),
        "queueDurationMillis": 3,
        "pauseDurationMillis": 0,
        "stages": [_stage_json(build_path, s) for s in rendered.stages],
    }


def node_payload(build_path: str, rendered: Rendered, node: int) -> dict[str, Any] | None:
    """``execution/node/<id>/wfapi/describe`` of a stage (with its flow nodes) or a step."""
    for stage in rendered.stages:
        if stage.id == node:
            data = _stage_json(build_path, stage)
            data["stageFlowNodes"] = [
                {
                    "_links": {
                        "self": {"href": f"{build_path}execution/node/{n.id}/wfapi/describe"},
                        "log": {"href": f"{build_path}execution/node/{n.id}/wfapi/log"},
                    },
                    "id": str(n.id),
                    "name": n.name,
                    "execNode": "",
                    "status": n.status,
                    "parameterDescription": n.description,
                    "startTimeMillis": n.start_ms,
                    "durationMillis": n.duration_ms,
                    "pauseDurationMillis": 0,
                    "parentNodes": [str(stage.id)],
                }
                for n in stage.nodes
            ]
            return data
        for n in stage.nodes:
            if n.id == node:
                return {
                    "_links": {
                        "self": {"href": f"{build_path}execution/node/{n.id}/wfapi/describe"}
                    },
                    "id": str(n.id),
                    "name": n.name,
                    "execNode": "",
                    "status": n.status,
                    "parameterDescription": n.description,
                    "startTimeMillis": n.start_ms,
                    "durationMillis": n.duration_ms,
                    "pauseDurationMillis": 0,
                    "parentNodes": [str(stage.id)],
                }
    return None


def color_of(result: str | None, building: bool) -> str:
    base = {"SUCCESS": "blue", "FAILURE": "red", "UNSTABLE": "yellow", "ABORTED": "aborted"}.get(
        result or "", "notbuilt"
    )
    return f"{base}_anime" if building else base


def config_xml(kind: str, **values: str) -> str:
    """The ``config.xml`` of a multibranch project (``kind="multibranch"``) or of a Pipeline
    job from SCM (``kind="pipeline"``), with ``values`` filled in."""
    from xml.sax.saxutils import escape

    text = str(json.loads(fixture_text("config_xml.json"))[kind])
    return text.format(**{k: escape(v) for k, v in values.items()})

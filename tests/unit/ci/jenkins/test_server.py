"""The Jenkins-compatible server itself: authentication, crumbs, payload shapes, tree queries,
multibranch job paths, python-jenkins against it."""

from __future__ import annotations

import json

import jenkins
import pytest
import requests
from cicd_devkit.servers.jenkins.payloads import (
    apply_tree,
    fixture_text,
    parse_tree,
)
from cicd_devkit.worlds import JENKINS_TOKEN as TOKEN
from cicd_devkit.worlds import JENKINS_USER as USER
from cicd_devkit.worlds import REPO, JenkinsWorld


def _get(
    jenkins_world: JenkinsWorld, path: str, auth: tuple[str, str] | None = (USER, TOKEN)
) -> requests.Response:
    return requests.get(jenkins_world.jenkins.url + path, auth=auth, timeout=5)


def test_basic_auth_with_the_api_token(jenkins_world: JenkinsWorld) -> None:
    anonymous = _get(jenkins_world, "api/json", auth=None)
    assert anonymous.status_code == 403 and "Authentication required" in anonymous.text
    wrong = _get(jenkins_world, "api/json", auth=(USER, "not-the-token"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert TOKEN not in wrong.text
    ok = _get(jenkins_world, "api/json")
    assert ok.status_code == 200 and ok.headers["X-Jenkins"]
    assert ok.json()["_class"] == "hudson.model.Hudson"
    assert [j["name"] for j in ok.json()["jobs"]] == ["acme", "shipping-main"]


def test_posts_need_the_crumb_of_the_user(jenkins_world: JenkinsWorld) -> None:
    url = jenkins_world.jenkins.job_url(REPO, "main") + "build"
    refused = requests.post(url, auth=(USER, TOKEN), timeout=5)
    assert refused.status_code == 403 and "crumb" in refused.text
    crumb = _get(jenkins_world, "crumbIssuer/api/json").json()
    assert crumb["crumbRequestField"] == "Jenkins-Crumb"
    wrong = requests.post(url, auth=(USER, TOKEN), headers={"Jenkins-Crumb": "0" * 64}, timeout=5)
    assert wrong.status_code == 403


def test_python_jenkins_reads_folders_jobs_and_builds(jenkins_world: JenkinsWorld) -> None:
    client = jenkins.Jenkins(jenkins_world.jenkins.url, username=USER, password=TOKEN, timeout=5)
    assert client.get_whoami()["id"] == USER
    assert client.get_version()
    names = {j["fullname"] for j in client.get_all_jobs()}
    assert {"acme", "acme/shipping", "acme/shipping/main", "shipping-main"} <= names
    job = client.get_job_info("acme/shipping/main")
    assert job["_class"] == "org.jenkinsci.plugins.workflow.job.WorkflowJob"
    assert [b["number"] for b in job["builds"]][-2:] == [2, 1]
    build = client.get_build_info("acme/shipping/main", 2)
    assert build["result"] == "FAILURE" and not build["building"]
    assert jenkins_world.made.head_run is not None
    head = jenkins_world.jenkins.build_of(REPO, jenkins_world.made.head_run.id)
    assert head is not None and build["queueId"] == head.queue_id
    revision = next(a for a in build["actions"] if "lastBuiltRevision" in a)["lastBuiltRevision"]
    assert revision["SHA1"] == jenkins_world.head_sha
    console = client.get_build_console_output("acme/shipping/main", 2)
    assert "[Pipeline] { (lint)" in console and console.rstrip().endswith("Finished: FAILURE")
    stages = client.get_build_stages("acme/shipping/main", 2)
    assert [(s["name"], s["status"]) for s in stages["stages"]] == [
        ("Declarative: Checkout SCM", "SUCCESS"),
        ("lint", "FAILED"),
        ("test", "SUCCESS"),
    ]


def test_payloads_keep_the_documented_shape(jenkins_world: JenkinsWorld) -> None:
    build = _get(jenkins_world, "job/acme/job/shipping/job/main/1/api/json").json()
    assert set(json.loads(fixture_text("workflow_run.json"))) <= set(build)
    job = _get(jenkins_world, "job/acme/job/shipping/job/main/api/json").json()
    assert set(json.loads(fixture_text("workflow_job.json"))) <= set(job)
    project = _get(jenkins_world, "job/acme/job/shipping/api/json").json()
    assert set(json.loads(fixture_text("multibranch_project.json"))) <= set(project)
    describe = _get(jenkins_world, "job/acme/job/shipping/job/main/1/wfapi/describe").json()
    assert set(json.loads(fixture_text("wfapi_run.json"))) <= set(describe)
    stage = describe["stages"][1]
    node = _get(
        jenkins_world,
        f"job/acme/job/shipping/job/main/1/execution/node/{stage['id']}/wfapi/describe",
    )
    assert set(json.loads(fixture_text("wfapi_stage.json"))) <= set(node.json())
    flow = node.json()["stageFlowNodes"]
    assert [f["name"] for f in flow][-1] == "Lint" and flow[-1][
        "parameterDescription"
    ] == "ruff check ."
    config = _get(jenkins_world, "job/acme/job/shipping/config.xml").text
    assert "<scriptPath>.github/workflows/ci.yml</scriptPath>" in config


def test_tree_queries_keep_only_the_named_fields(jenkins_world: JenkinsWorld) -> None:
    tree = "jobs[name,builds[number,result]{0,1}]"
    data = _get(jenkins_world, f"job/acme/job/shipping/api/json?tree={tree}").json()
    main = next(j for j in data["jobs"] if j["name"] == "main")
    assert set(main) == {"_class", "name", "builds"}
    assert len(main["builds"]) == 1 and set(main["builds"][0]) == {"_class", "number", "result"}
    assert parse_tree("a,b[c,d[e]]{1,3},f") == {
        "a": None,
        "b": ({"c": None, "d": ({"e": None}, None)}, (1, 3)),
        "f": None,
    }
    assert apply_tree({"_class": "x", "a": {"_class": "y", "z": 1}, "b": 2}, {"a": None}) == {
        "_class": "x",
        "a": {"_class": "y"},
    }


def test_unknown_jobs_and_builds_are_404(jenkins_world: JenkinsWorld) -> None:
    for path in (
        "job/acme/job/nope/api/json",
        "job/acme/job/shipping/job/no-such-branch/api/json",
        "job/acme/job/shipping/job/main/99/api/json",
        "queue/item/5/api/json",
    ):
        assert _get(jenkins_world, path).status_code == 404, path
    client = jenkins.Jenkins(jenkins_world.jenkins.url, username=USER, password=TOKEN, timeout=5)
    with pytest.raises(jenkins.JenkinsException):
        client.get_build_info("acme/shipping/main", 99)

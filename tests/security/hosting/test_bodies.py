"""Finding 7, log text raw in bodies: a failing run of four jobs whose logs (about 300,000
characters each) carry a code fence, mentions, HTML and a script. Through discovery and
publishing, on the local provider and the GitHub and GitLab providers against their servers
(which refuse a body over the hosting's limit, as the hostings do): the pull request body,
the report comment and the escalation issue keep each excerpt inside one fence, ping nobody,
carry no live HTML, and stay under the limit with a note and the link to the report."""

from __future__ import annotations

import re

import pytest
from cicd_devkit.hostile import (
    HOSTILE,
    StartWorld,
    attempt_on,
    completed_run,
    fix,
    hostile_workflow,
    hostings,
    push_commit,
)
from cicd_devkit.worlds import REPO
from markdown_it import MarkdownIt

from cicd_orchestrator import session
from cicd_orchestrator.publish.change import publish_change
from cicd_orchestrator.publish.issue import issue_body, publish_issue
from cicd_orchestrator.report import render_report
from cicd_orchestrator.stages import discovery

BASE_URL = "https://airflow.example.com"
MD = MarkdownIt("commonmark")
_PRE = re.compile(r"<pre><code[^>]*>.*?</code></pre>", re.S)


def _check(body: str, excerpts: list[list[str]], limit: int) -> None:
    """``body`` renders as data: each excerpt (its lines) inside one code block, no live
    HTML, no mention outside code, under ``limit``."""
    assert len(body) <= limit
    html = MD.render(body)
    for tag in ("<img", "<script"):
        assert tag not in html, tag
    prose = _PRE.sub("", html)
    for mention in ("@org/team", "@alice"):
        assert mention not in prose, mention
    fences = [t.content for t in MD.parse(body) if t.type == "fence"]
    for lines in excerpts:
        assert any(all(line in code for line in lines) for code in fences), lines[0][:80]


@pytest.mark.parametrize("kind", hostings("github", "local", "gitlab"))
def test_hostile_logs_reach_the_hosting_as_data(start: StartWorld, kind: str) -> None:
    world = start(kind)
    run = completed_run(world, push_commit(world, "feature/hostile", hostile_workflow(4)))
    assert [j.conclusion.value for j in run.failed_jobs] == ["failure"] * 4
    with world.provider().open_job_log(REPO, run.failed_jobs[0].id) as fh:
        assert len(fh.read().decode()) >= 300_000
    attempt = attempt_on(world, run.id, config={"airflow_base_url": BASE_URL})
    state, provider = attempt.state, attempt.provider
    session.fold_discovery(
        state, 1, 0.0, discovery.detect_failures(attempt, {}), discovery.analyse_context(attempt)
    )
    assert len(state.failures) == 4 and all(f.excerpts for f in state.failures)
    first = state.failures[0].excerpts[0].text.splitlines()
    assert any(HOSTILE in line for line in first)
    limit = provider.body_limit
    link = f"{BASE_URL}/cicd/sessions/{state.session_id}"

    # the escalation issue: far over GitHub's limit before it is made safe, and it opens
    raw = issue_body(state, "", [run.workflow_path])
    assert len(raw) > 65_536
    issue = publish_issue(attempt).issue
    assert issue is not None
    body = world.local.get_issue(REPO, issue.number).body
    _check(body, [first[:25]], limit)
    if len(raw) > limit:
        assert "Cut to fit" in body and link in body

    # the pull request (a repair whose description carries the hostile text) and the report
    published = publish_change(attempt, [fix(f"Fix it {HOSTILE}")], render_report(state))
    assert published.pull_request is not None
    number = published.pull_request.number
    _check(world.local.get_pull_request(REPO, number).body, [], limit)
    (report,) = world.local.list_comments(REPO, number)
    excerpts = [f.excerpts[0].text.splitlines()[:15] for f in state.failures]
    _check(report.body, excerpts[:1], limit)

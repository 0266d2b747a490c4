"""``run_jobs`` replays GitLab CI jobs and Jenkins stages in their own formats."""

from __future__ import annotations

from typing import Any

import pytest

from cicd_orchestrator.config import load_config
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.validation.jobs import (
    GITHUB,
    GITLAB,
    JENKINS,
    JobTarget,
    all_passed,
    engine_for,
    failing_targets,
    make_runner,
    run_jobs,
)

GITLAB_CI = """
stages: [test]
variables:
  LIMIT: "3"
pytest:
  stage: test
  image: python:3.12
  script:
    - python3 -c "import value, os; assert value.V < int(os.environ['LIMIT']), value.V"
"""

JENKINSFILE = """
pipeline {
    agent any
    stages {
        stage('Unit tests') {
            steps {
                sh 'python3 -c "import value; assert value.V < 3, value.V"'
            }
        }
    }
}
"""


def _run(repo: Any, sha: str, path: str, jobs: set[str], **kwargs: Any) -> Any:
    return run_jobs(
        make_runner(load_config()),
        repo.path,
        sha,
        failing_targets(path, jobs),
        repository="acme/shipping",
        **kwargs,
    )


@pytest.mark.usefixtures("no_container_engine")
def test_a_gitlab_job_fails_then_passes(git_repo: Any) -> None:
    bad = git_repo.commit({".gitlab-ci.yml": GITLAB_CI, "value.py": "V = 5\n"}, "bad")
    results = _run(git_repo, bad, ".gitlab-ci.yml", {"pytest"})
    assert [r.job for r in results] == ["pytest"]
    assert results[0].conclusion is Conclusion.FAILURE
    assert "AssertionError: 5" in results[0].log_tail
    assert "ERROR: Job failed: exit code 1" in results[0].log_tail
    assert not all_passed(results)
    good = git_repo.commit({"value.py": "V = 1\n"}, "fix")
    after = _run(git_repo, good, ".gitlab-ci.yml", {"pytest"})
    assert all_passed(after)
    assert "Job succeeded" in after[0].log_tail


def test_a_jenkins_stage_fails_then_passes(git_repo: Any) -> None:
    bad = git_repo.commit({"Jenkinsfile": JENKINSFILE, "value.py": "V = 5\n"}, "bad")
    results = _run(git_repo, bad, "Jenkinsfile", {"Unit tests"})
    assert [r.job for r in results] == ["Unit tests"]
    assert results[0].conclusion is Conclusion.FAILURE
    assert "ERROR: script returned exit code 1" in results[0].log_tail
    good = git_repo.commit({"value.py": "V = 1\n"}, "fix")
    assert all_passed(_run(git_repo, good, "Jenkinsfile", {"Unit tests"}))


@pytest.mark.usefixtures("no_container_engine")
def test_the_provider_decides_the_engine(git_repo: Any) -> None:
    """A GitLab configuration under another name is GitLab CI when the provider says so."""
    sha = git_repo.commit({"ci/pipeline.yml": GITLAB_CI, "value.py": "V = 1\n"}, "custom path")
    results = _run(git_repo, sha, "ci/pipeline.yml", {"pytest"}, provider="gitlab")
    assert all_passed(results)
    target = [JobTarget("ci/pipeline.yml", frozenset({"pytest"}), ci="gitlab")]
    runner = make_runner(load_config())
    assert all_passed(run_jobs(runner, git_repo.path, sha, target, repository="acme/shipping"))


def test_an_invalid_gitlab_file_is_a_clear_failure(git_repo: Any) -> None:
    sha = git_repo.commit({".gitlab-ci.yml": "job:\n  script: [a\n"}, "broken")
    (result,) = _run(git_repo, sha, ".gitlab-ci.yml", {"job"})
    assert result.conclusion is Conclusion.FAILURE
    assert result.job == ".gitlab-ci.yml" and ".gitlab-ci.yml#L" in result.log_tail


def test_a_stage_that_cannot_be_replayed_says_so(git_repo: Any) -> None:
    text = JENKINSFILE.replace("sh 'python3", "withCredentials([]) { sh 'python3").replace(
        "value.V\"'", "value.V\"' }"
    )
    sha = git_repo.commit({"Jenkinsfile": text, "value.py": "V = 1\n"}, "creds")
    (result,) = _run(git_repo, sha, "Jenkinsfile", {"Unit tests"})
    assert result.conclusion is Conclusion.NEUTRAL
    assert result.not_replayable is not None and "withCredentials" in result.not_replayable
    assert "cannot replay locally" in result.log_tail


@pytest.mark.parametrize(
    ("path", "text", "provider", "engine"),
    [
        (".github/workflows/ci.yml", "on: push\njobs: {}\n", None, GITHUB),
        (".gitlab-ci.yml", "x: 1\n", None, GITLAB),
        ("ci/base.gitlab-ci.yml", "x: 1\n", None, GITLAB),
        ("Jenkinsfile.release", "pipeline {}\n", None, JENKINS),
        ("ci/build.groovy", "pipeline {}\n", None, JENKINS),
        ("ci/pipeline.yml", "test:\n  script: [make]\n", None, GITLAB),
        ("ci/workflow.yml", "on: push\njobs:\n  a: {}\n", None, GITHUB),
        ("ci/Buildfile", "// build\npipeline {\n}\n", None, JENKINS),
        ("ci/pipeline.yml", "test:\n  script: [make]\n", "github", GITHUB),
        (".gitlab-ci.yml", "x: 1\n", "jenkins", JENKINS),
    ],
)
def test_engine_for(git_repo: Any, path: str, text: str, provider: str | None, engine: str) -> None:
    sha = git_repo.commit({path: text}, "file")
    assert engine_for(git_repo.path, sha, path, provider) == engine

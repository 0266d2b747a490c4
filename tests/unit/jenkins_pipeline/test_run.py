"""Replaying the stages of a declarative Jenkinsfile: sh steps, environment, shared
workspace, when, what cannot be replayed."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from cicd_orchestrator.actions.results import JobExecution
from cicd_orchestrator.actions.runner import JobRunner
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.exceptions import WorkflowError

Run = Callable[..., dict[str, JobExecution]]

SERVICE = """
pipeline {
    agent any
    environment {
        APP = 'shipping'
        DIST = "${env.WORKSPACE}/dist"
    }
    stages {
        stage('Build') {
            steps {
                sh 'mkdir -p "$DIST" && cp version.txt "$DIST/"'
                echo "built ${APP} on ${env.BRANCH_NAME}"
            }
        }
        stage('Test') {
            environment { LEVEL = 'unit' }
            steps {
                sh '''
                    echo "level=$LEVEL"
                    test "$(cat dist/version.txt)" = "2"
                '''
            }
        }
        stage('Deploy') {
            when { branch 'production' }
            steps { sh './deploy.sh' }
        }
    }
}
"""


def test_stages_pass_and_share_the_workspace(run_jenkins: Run) -> None:
    stages = run_jenkins(SERVICE, {"version.txt": "2\n"})
    assert list(stages) == ["Build", "Test", "Deploy"]
    assert stages["Build"].conclusion is Conclusion.SUCCESS
    assert stages["Test"].conclusion is Conclusion.SUCCESS
    build = stages["Build"].read_log()
    assert "[Pipeline] { (Build)" in build
    assert "+ mkdir -p " in build  # sh -x echoes each command
    assert "built shipping on main" in build
    assert build.rstrip().endswith("Finished: SUCCESS")
    assert "level=unit" in stages["Test"].read_log()
    deploy = stages["Deploy"]
    assert deploy.conclusion is Conclusion.SKIPPED
    assert 'Stage "Deploy" skipped due to when conditional' in deploy.read_log()


def test_a_failing_stage(run_jenkins: Run) -> None:
    stages = run_jenkins(SERVICE, {"version.txt": "3\n"}, stages={"Test"})
    assert list(stages) == ["Test"]  # Build ran first for the workspace, and passed
    test = stages["Test"]
    assert test.conclusion is Conclusion.FAILURE
    text = test.read_log()
    assert "ERROR: script returned exit code 1" in text
    assert text.rstrip().endswith("Finished: FAILURE")


def test_an_earlier_stage_that_fails_is_reported(run_jenkins: Run) -> None:
    stages = run_jenkins(SERVICE, {}, stages={"Test"})  # no version.txt: Build fails
    assert stages["Build"].conclusion is Conclusion.FAILURE
    assert stages["Test"].conclusion is Conclusion.SKIPPED
    assert 'Stage "Test" skipped due to earlier failure(s)' in stages["Test"].read_log()


def test_a_stage_asked_for_runs_although_when_does_not_hold(run_jenkins: Run) -> None:
    files = {"version.txt": "2\n", "deploy.sh": "#!/bin/sh\necho deployed\n"}
    stages = run_jenkins(
        SERVICE.replace("'./deploy.sh'", "'sh deploy.sh'"), files, stages={"Deploy"}
    )
    deploy = stages["Deploy"]
    assert deploy.conclusion is Conclusion.SUCCESS
    assert "deployed" in deploy.read_log()
    assert "it was asked for by name" in deploy.read_log()


def test_jenkins_variables(run_jenkins: Run) -> None:
    text = """
pipeline {
    agent any
    stages {
        stage('Vars') {
            steps {
                sh '''
                    v="b=$BRANCH_NAME c=$GIT_COMMIT w=$WORKSPACE"
                    echo "$v n=$BUILD_NUMBER j=$JOB_NAME s=$STAGE_NAME"
                '''
            }
        }
    }
}
"""
    log = run_jenkins(text, build_number=42)["Vars"].read_log()
    assert re.search(r"b=main c=[0-9a-f]{40} w=/\S+/shipping n=42 j=acme/shipping/main s=Vars", log)


def test_not_replayable_stages_say_why(run_jenkins: Run) -> None:
    text = """
pipeline {
    agent any
    environment { TOKEN = credentials('registry') }
    stages {
        stage('Push') {
            steps { sh 'docker push x' }
        }
    }
}
"""
    push = run_jenkins(text)["Push"]
    assert push.conclusion is Conclusion.NEUTRAL
    assert push.not_replayable is not None and "credentials" in push.not_replayable
    assert "cannot replay locally: credentials(...)" in push.read_log()
    groovy = """
pipeline {
    agent any
    stages {
        stage('Version') { steps { script { env.V = sh(returnStdout: true, script: 'cat V') } } }
        stage('Check') { steps { sh 'true' } }
    }
}
"""
    stages = run_jenkins(groovy, stages={"Version", "Check"})
    assert stages["Version"].not_replayable == "script { ... } is Groovy code"
    assert stages["Check"].conclusion is Conclusion.SUCCESS
    assert "NOTE: stage Version before it was not replayed" in stages["Check"].read_log()


def test_a_scripted_pipeline_is_not_replayable(run_jenkins: Run) -> None:
    stages = run_jenkins("node {\n  stage('Build') { sh 'make' }\n}\n", stages={"Build"})
    assert stages["Build"].conclusion is Conclusion.NEUTRAL
    assert "cannot replay locally: a scripted pipeline" in stages["Build"].read_log()


def test_unknown_stage_is_an_error(run_jenkins: Run) -> None:
    with pytest.raises(WorkflowError, match="no stage named Ghost"):
        run_jenkins(SERVICE, stages={"Ghost"})


def test_parallel_parent_selects_its_stages_and_dir_and_with_env(run_jenkins: Run) -> None:
    text = """
pipeline {
    agent any
    stages {
        stage('Checks') {
            parallel {
                stage('In dir') {
                    steps {
                        dir('sub/folder') { sh 'pwd' }
                        withEnv(['MODE=fast']) { sh 'echo "mode=$MODE"' }
                    }
                }
                stage('Status') {
                    steps {
                        sh script: 'exit 3', returnStatus: true
                        error 'stop here'
                    }
                }
            }
        }
    }
}
"""
    stages = run_jenkins(text, stages={"Checks"})
    assert list(stages) == ["In dir", "Status"]
    in_dir = stages["In dir"].read_log()
    assert re.search(r"/shipping/sub/folder$", in_dir, re.M)
    assert "mode=fast" in in_dir
    status = stages["Status"]
    assert status.conclusion is Conclusion.FAILURE
    assert "ERROR: stop here" in status.read_log()


def test_timeout_step_stops_a_slow_command(run_jenkins: Run) -> None:
    text = """
pipeline {
    agent any
    stages {
        stage('Slow') { steps { timeout(time: 1, unit: 'SECONDS') { sh 'sleep 20' } } }
    }
}
"""
    slow = run_jenkins(text)["Slow"]
    assert slow.conclusion is Conclusion.TIMED_OUT
    assert "Timeout has been exceeded" in slow.read_log()


def test_secrets_are_masked_and_the_host_env_stays_out(
    run_jenkins: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CICD_TEST_LEAK", "leaked")
    text = """
pipeline {
    agent any
    environment { KEY = 'hunter2-secret' }
    stages { stage('Env') { steps { sh 'echo "key=$KEY leak=[${CICD_TEST_LEAK:-}]"' } } }
}
"""
    runner = JobRunner(secrets={"KEY": "hunter2-secret"})
    log = run_jenkins(text, runner=runner)["Env"].read_log()
    assert "key=*** leak=[]" in log and "hunter2-secret" not in log


def test_jenkins_own_stages_are_not_replayable(run_jenkins: Run) -> None:
    stages = run_jenkins(SERVICE, {"version.txt": "2\n"}, stages={"Declarative: Post Actions"})
    post = stages["Declarative: Post Actions"]
    assert post.conclusion is Conclusion.NEUTRAL
    assert (
        "cannot replay locally: Declarative: Post Actions is a stage of Jenkins" in post.read_log()
    )
    both = run_jenkins(
        SERVICE, {"version.txt": "2\n"}, stages={"Declarative: Post Actions", "Build"}
    )
    assert both["Build"].conclusion is Conclusion.SUCCESS
    assert both["Declarative: Post Actions"].conclusion is Conclusion.NEUTRAL


def test_a_stage_runs_in_the_sandbox(run_jenkins: Run) -> None:
    import sys

    text = (
        "pipeline { agent any\n stages { stage('S') { steps {\n"
        f'  sh \'if test -e {sys.prefix}; then echo vis"ible"; else echo hid"den"; fi\'\n'
        "} } } }\n"
    )
    log = run_jenkins(text)["S"].read_log()
    assert "\nhidden\n" in log and "\nvisible\n" not in log


def test_an_agent_image_runs_the_stages_in_its_container(
    run_jenkins: Run, container_images: tuple[str, str]
) -> None:
    busybox, _ = container_images
    jenkinsfile = f"""
pipeline {{
  agent {{ docker {{ image '{busybox}' }} }}
  stages {{
    stage('Prepare') {{
      steps {{ sh 'echo prepared > state.txt && readlink /bin/sh' }}
    }}
    stage('Check') {{
      steps {{
        sh 'cat state.txt && test ! -e /usr/bin/python3 && echo "no host python"'
        sh 'exit 2'
      }}
    }}
  }}
}}
"""
    stages = run_jenkins(jenkinsfile)
    prepare, check = stages["Prepare"], stages["Check"]
    assert prepare.conclusion is Conclusion.SUCCESS, prepare.read_log()
    assert f"withDockerContainer ({busybox})" in prepare.read_log()
    assert "busybox" in prepare.read_log()
    text = check.read_log()
    assert check.conclusion is Conclusion.FAILURE, text
    assert "prepared" in text and "no host python" in text and "exit code 2" in text

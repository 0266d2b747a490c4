"""Reading declarative Jenkinsfiles: stages, steps, environment, when, what is not replayable."""

from __future__ import annotations

import pytest

from cicd_orchestrator.jenkins_pipeline import groovy
from cicd_orchestrator.jenkins_pipeline.groovy import JenkinsfileError, Str
from cicd_orchestrator.jenkins_pipeline.model import parse_jenkinsfile
from cicd_orchestrator.jenkins_pipeline.values import (
    NotReplayable,
    ant_match,
    interpolate,
    when_holds,
)

JENKINSFILE = """
#!/usr/bin/env groovy
/* A service built with make, checked in parallel. */
pipeline {
    agent { docker { image 'golang:1.22' } }
    options { timeout(time: 1, unit: 'HOURS') }
    environment {
        GOFLAGS = '-mod=vendor'
        OUT = "${env.WORKSPACE}/dist"
        TOKEN = credentials('deploy-token')
    }
    stages {
        stage('Build') {
            steps {
                sh 'make build'; echo 'built'
                sh '''
                    go vet ./...
                    go test ./...
                '''
                sh(script: "ls ${OUT}", label: 'list')
                sh label: 'status', script: 'make status', returnStatus: true
            }
        }
        stage('Checks') {
            parallel {
                stage('Lint') {
                    steps { sh 'make lint' }
                }
                stage('Docs') {
                    stages {
                        stage('Docs build') { steps { dir('docs') { sh 'make html' } } }
                    }
                }
            }
        }
        stage('Release') {
            when { branch 'release/*' }
            steps {
                script {
                    def v = readFile('VERSION').trim()
                    if (v) { echo "releasing ${v}" }
                }
            }
            post { success { echo 'released' } }
        }
    }
    post {
        always { junit 'reports/*.xml' }
    }
}
"""


def test_stages_steps_and_environment() -> None:
    p = parse_jenkinsfile(JENKINSFILE, "Jenkinsfile")
    assert p.not_replayable is None
    assert [s.name for s in p.stages] == ["Build", "Checks", "Release"]
    assert [s.name for s in p.leaves()] == ["Build", "Lint", "Docs build", "Release"]
    assert p.image == "golang:1.22"
    assert [name for name, _ in p.environment] == ["GOFLAGS", "OUT", "TOKEN"]
    build = p.stages[0]
    kinds = [step[0] for step in build.steps]
    assert kinds == ["sh", "echo", "sh", "sh", "sh"]
    assert build.steps[0][1] == Str("make build", False)
    assert "go vet ./..." in build.steps[2][1].value
    assert build.steps[3][1] == Str("ls ${OUT}", True)
    assert build.steps[4][2] is True  # returnStatus
    checks = p.stages[1]
    assert checks.parallel and [c.name for c in checks.children] == ["Lint", "Docs"]
    docs_build = checks.children[1].children[0]
    assert docs_build.steps[0][0] == "dir" and docs_build.steps[0][2][0][0] == "sh"
    release = p.stages[2]
    assert release.when is not None
    assert release.not_replayable == "script { ... } is Groovy code"
    assert any("post" in n for n in release.notes)
    assert any("post" in n for n in p.notes) and any("options" in n for n in p.notes)


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (
            "withCredentials([string(credentialsId: 'x', variable: 'T')]) { sh 'x' }",
            "withCredentials",
        ),
        ("docker.image('node:20').inside { sh 'npm test' }", "Groovy code"),
        ("slackSend channel: '#ci'", "the step slackSend is not replayed"),
        ("sh returnStdout: true, script: 'git rev-parse HEAD'", "returnStdout"),
        ("sh script: cmd", "computed script"),
    ],
)
def test_what_is_not_replayable(steps: str, reason: str) -> None:
    text = f"pipeline {{ agent any\n stages {{ stage('S') {{ steps {{ {steps} }} }} }} }}"
    (stage,) = parse_jenkinsfile(text, "Jenkinsfile").stages
    assert stage.not_replayable is not None and reason in stage.not_replayable


def test_a_scripted_pipeline_is_not_replayable() -> None:
    text = "node {\n  stage('Build') {\n    sh 'make'\n  }\n}\n"
    p = parse_jenkinsfile(text, "Jenkinsfile")
    assert p.not_replayable is not None and "scripted pipeline" in p.not_replayable


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pipeline {\n agent any\n stages {\n", "never closed"),
        ("pipeline { stages { stage('A') { steps { sh 'x } } } }", "unterminated string"),
        ("echo 'hello'\n", "no pipeline"),
        ("pipeline { agent any }", "no stages"),
        ("pipeline { stages { stage('A') { } } }", "stage A has no steps"),
        ("pipeline { stages { stage(name) { steps { sh 'x' } } } }", "a stage needs a name"),
        ("pipeline { stages { sh 'x' } }", "holds only stage blocks"),
        ("}\n", "unexpected '}'"),
    ],
)
def test_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(JenkinsfileError, match=message):
        parse_jenkinsfile(text, "Jenkinsfile")


def test_an_error_names_the_line() -> None:
    with pytest.raises(JenkinsfileError) as err:
        parse_jenkinsfile("pipeline {\n  stages {\n    stage('A') {\n      steps { sh 'x }\n", "J")
    assert err.value.line == 4
    with pytest.raises(JenkinsfileError) as err:
        parse_jenkinsfile("pipeline {\n  stages {\n    stage('A') {\n  steps { sh 'x' }\n}}", "J")
    assert err.value.line == 1
    assert "J#L1: this '{' is never closed" in str(err.value)


def test_string_literals() -> None:
    assert groovy.string_value("'it\\'s'") == Str("it's", False)
    assert groovy.string_value('"a\\tb"') == Str("a\tb", True)
    assert groovy.string_value("'''x\ny'''") == Str("x\ny", False)
    assert groovy.string_value('"cost \\$5"') == Str("cost \\$5", True)


def test_gstring_interpolation() -> None:
    env = {"BRANCH_NAME": "main", "OUT": "/w/dist"}
    assert interpolate(Str("on ${env.BRANCH_NAME} to $OUT/x", True), env) == "on main to /w/dist/x"
    assert interpolate(Str("on ${BRANCH_NAME}", False), env) == "on ${BRANCH_NAME}"
    assert interpolate(Str("cost \\$5", True), env) == "cost $5"
    for text in ("${params.TARGET}", "${1 + 2}", "$UNSET"):
        with pytest.raises(NotReplayable):
            interpolate(Str(text, True), env)


def _when(body: str) -> groovy.Node:
    (node,) = groovy.parse(f"when {{ {body} }}", "J")
    return node


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("branch 'main'", True),
        ("branch 'release/*'", False),
        ("branch pattern: 'ma.*', comparator: 'REGEXP'", True),
        ("not { branch 'main' }", False),
        ("anyOf { branch 'dev'; branch 'main' }", True),
        ("allOf { branch 'main'; environment name: 'DEPLOY', value: 'yes' }", False),
        ("environment name: 'MODE', value: 'full'", True),
        ("changeRequest()", False),
        ("buildingTag()", False),
        ("beforeAgent true\n branch 'main'", True),
    ],
)
def test_when_conditions(body: str, expected: bool) -> None:
    notes: list[str] = []
    env = {"BRANCH_NAME": "main", "MODE": "full"}
    assert when_holds(_when(body), env, notes) is expected


def test_when_expression_is_not_replayable() -> None:
    with pytest.raises(NotReplayable, match="expression"):
        when_holds(_when("expression { return params.DEPLOY }"), {}, [])


def test_ant_globs() -> None:
    assert ant_match("release/1.2", "release/*")
    assert not ant_match("release/1/2", "release/*")
    assert ant_match("feature/a/b", "feature/**")
    assert ant_match("PR-12", "PR-??")

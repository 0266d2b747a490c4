from __future__ import annotations

import dataclasses

import pytest
import yaml

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.git import checkout
from cicd_orchestrator.models import Context, Failure
from cicd_orchestrator.repair.k8s import SCHEMA, KubernetesSchemaFixer, check_text


def deploy_failure(**captures):
    return Failure(
        job="deploy",
        job_id=1,
        run_id=1,
        step="Validate manifests",
        category=FailureCategory.DEPLOYMENT,
        confidence=0.8,
        signature="s",
        captures=captures,
        evidence=["error: error validating data"],
    )


def make_ctx(repo, sha, changed=(), enabled=True, **captures):
    context = Context(failing_sha=sha, changed_files=list(changed))
    ctx = repo.context([deploy_failure(**captures)], sha, context=context)
    return repo.enable(ctx, "k8s-schema", on=enabled)


GOOD = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
        tier: front
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 8080
              protocol: TCP
          resources:
            limits: {cpu: 500m, memory: 128Mi}
            requests: {cpu: 0.25}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: http
"""


def problems(text):
    return [f"{p.path}: {p.message}" for _, p in check_text(text)]


def test_a_valid_manifest_has_no_problems():
    assert problems(GOOD) == []


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("          image: nginx:1.27\n", "", "spec.template.spec.containers[0].image: missing"),
        ("  name: web\n  labels", "  labels", "metadata.name: missing"),
        ("apiVersion: apps/v1\n", "", "apiVersion: missing"),
        (
            "    matchLabels:\n      app: web\n",
            "    matchLabels:\n      app: api\n",
            "spec.template.metadata.labels.app: 'web' does not match the selector "
            "spec.selector.matchLabels.app ('api')",
        ),
        ("  selector:\n    matchLabels:\n      app: web\n", "", "spec.selector: missing"),
        (
            "        - name: web\n",
            "        - image: x\n",
            "spec.template.spec.containers[0].name: missing",
        ),
        ("  replicas: 2\n", "  replicas: two\n", "spec.replicas: must be an integer"),
        ("  replicas: 2\n", "  replicas: 2.5\n", "spec.replicas: must be an integer"),
        (
            "containerPort: 8080",
            "containerPort: http",
            "spec.template.spec.containers[0].ports[0].containerPort: must be an integer",
        ),
        (
            "protocol: TCP",
            "protocol: tcp",
            "spec.template.spec.containers[0].ports[0].protocol: must be one of TCP, UDP, SCTP",
        ),
        (
            "memory: 128Mi",
            "memory: lots",
            "spec.template.spec.containers[0].resources.limits.memory: must be a quantity",
        ),
        (
            "      containers:\n",
            "      containers: []\n      old:\n",
            "spec.template.spec.containers: must have at least 1 item(s)",
        ),
        ("    - port: 80\n", "    - name: http\n", "spec.ports[0].port: missing"),
        (
            "  ports:\n    - port: 80\n      targetPort: http\n",
            "  ports: 80\n",
            "spec.ports: must be a list, not the integer '80'",
        ),
    ],
)
def test_schema_problems_name_the_offending_path(old, new, expected):
    broken = GOOD.replace(old, new, 1)
    assert broken != GOOD
    found = problems(broken)
    assert any(p.startswith(expected) for p in found), found


def test_configmap_values_must_be_strings_and_config_files_are_not_objects():
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: x\n  b: 3\n"
        "  c: {nested: 1}\n---\napiVersion: v2\nname: chart\nversion: 1.0\n---\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n"
        "---\nname: CI\non: push\n"
    )
    assert problems(text) == [
        "data.b: must be a string, not the integer '3'",
        "data.c: must be a string, not a mapping",
    ]


def test_schema_is_data():
    assert {"Deployment", "StatefulSet", "DaemonSet", "Service", "ConfigMap"} <= set(
        SCHEMA["kinds"]
    )
    assert SCHEMA["types"]["Container"]["image"] == {"type": "string", "required": True}
    # the schema is plain YAML-able data, no code
    assert yaml.safe_load(yaml.safe_dump(SCHEMA)) == SCHEMA


def test_problems_are_reported_with_file_and_path(repo):
    broken = GOOD.replace("          image: nginx:1.27\n", "")
    sha = repo.commit({"deploy/app.yaml": broken, "deploy/other.yaml": GOOD}, "drop image")
    result = KubernetesSchemaFixer().propose(make_ctx(repo, sha, changed=["deploy/app.yaml"]))
    assert result.applicable and not result.repairs
    assert len(result.unrepaired) == 1
    assert result.unrepaired[0].startswith(
        "deploy/app.yaml: spec.template.spec.containers[0].image: missing"
    )
    assert "Deployment/web" in result.unrepaired[0]


def test_all_manifests_are_checked_when_no_changed_or_named_file_is_yaml(repo):
    broken = GOOD.replace("    - port: 80\n", "    - name: http\n")
    sha = repo.commit(
        {"k8s/svc.yaml": broken, ".github/workflows/ci.yml": "name: CI\non: push\n"}, "init"
    )
    result = KubernetesSchemaFixer().propose(make_ctx(repo, sha, changed=["README.md"]))
    assert [u.split(" (")[0] for u in result.unrepaired] == [
        "k8s/svc.yaml: spec.ports[0].port: missing"
    ]


def test_the_file_named_by_the_failure_is_checked(repo):
    broken = GOOD.replace("  replicas: 2\n", "  replicas: many\n")
    sha = repo.commit({"deploy/a.yaml": broken, "deploy/b.yaml": broken}, "init")
    result = KubernetesSchemaFixer().propose(
        make_ctx(repo, sha, changed=["x.py"], file="/home/runner/work/shop/deploy/b.yaml")
    )
    assert [u.split(":")[0] for u in result.unrepaired] == ["deploy/b.yaml"]


def test_quoted_integers_and_unquoted_config_values_are_fixed_byte_for_byte(repo):
    broken = GOOD.replace("  replicas: 2\n", '  replicas: "3"   # scaled\n').replace(
        "containerPort: 8080", "containerPort: '8080'"
    )
    configmap = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n"
        "  RETRIES: 3\n  RATIO: 1.10\n  DEBUG: yes\n  NAME: shop\n"
    )
    sha = repo.commit({"deploy/app.yaml": broken, "deploy/cm.yaml": configmap}, "init")
    result = KubernetesSchemaFixer().propose(make_ctx(repo, sha))
    assert not result.unrepaired
    repair = result.repairs[0]
    assert repair.kind is RepairKind.CHANGE and repair.category is FailureCategory.DEPLOYMENT
    assert repair.files == ["deploy/app.yaml", "deploy/cm.yaml"]
    assert 'deploy/app.yaml: spec.replicas: "3" -> 3' in repair.description
    with checkout(repo.path, sha) as ws:
        assert ws.apply(repair.patch)
        app = (ws.path / "deploy/app.yaml").read_text()
        cm = (ws.path / "deploy/cm.yaml").read_text()
    assert app == GOOD.replace("  replicas: 2\n", "  replicas: 3   # scaled\n")
    assert cm == configmap.replace("3\n", '"3"\n').replace("1.10", '"1.10"').replace("yes", '"yes"')
    assert problems(app) == [] and problems(cm) == []


def test_fixes_and_reports_together(repo):
    broken = GOOD.replace("  replicas: 2\n", '  replicas: "2"\n').replace(
        "          image: nginx:1.27\n", ""
    )
    sha = repo.commit({"app.yml": broken}, "init")
    result = KubernetesSchemaFixer().propose(make_ctx(repo, sha))
    assert len(result.repairs) == 1 and "spec.replicas" in result.repairs[0].description
    assert len(result.unrepaired) == 1 and "image: missing" in result.unrepaired[0]


def test_templates_and_unparsable_files_are_left_to_others(repo):
    sha = repo.commit(
        {
            "chart/templates/d.yaml": "apiVersion: apps/v1\nkind: Deployment\n"
            "metadata: {name: {{ .Release.Name }}}\n",
            "bad.yaml": "a: [\n",
        },
        "init",
    )
    result = KubernetesSchemaFixer().propose(make_ctx(repo, sha))
    assert result.applicable and not result.repairs and not result.unrepaired


def test_disabled_or_irrelevant(repo):
    sha = repo.commit({"app.yaml": GOOD.replace("  replicas: 2\n", '  replicas: "2"\n')}, "x")
    assert not KubernetesSchemaFixer().propose(make_ctx(repo, sha, enabled=False)).repairs
    failure = dataclasses.replace(deploy_failure(), category=FailureCategory.BUILD)
    assert KubernetesSchemaFixer().relevant([failure]) == []

from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory, RepairKind
from cicd_orchestrator.repair.manifest import ManifestFixer, duplicate_keys, fix_whitespace

MANIFEST = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
    "  replicas: 3\n  template:\n\tspec: {}   \n"
)


def test_tab_indentation_is_repaired(repo, make_failure):
    sha = repo.commit({"deploy/app.yaml": MANIFEST, "deploy/ok.yaml": "a: 1\n"}, "init")
    result = ManifestFixer().propose(repo.context([make_failure(FailureCategory.DEPLOYMENT)], sha))
    repair = result.repairs[0]
    assert repair.files == ["deploy/app.yaml"] and repair.kind is RepairKind.CHANGE
    assert fix_whitespace(MANIFEST).endswith("  template:\n  spec: {}\n")


def test_duplicated_keys_are_reported_not_changed(repo, make_failure):
    text = "a: 1\nb: 2\na: 3\n"
    assert duplicate_keys(text) == ["line 3: duplicated key 'a'"]
    sha = repo.commit({"k8s/x.yaml": text}, "init")
    result = ManifestFixer().propose(repo.context([make_failure(FailureCategory.DEPLOYMENT)], sha))
    assert not result.repairs
    assert result.unrepaired == ["k8s/x.yaml line 3: duplicated key 'a'"]

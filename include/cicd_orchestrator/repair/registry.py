"""Which fixers serve which failure category (data, not branches in the DAGs)."""

from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.repair.action_upgrade import ActionUpgradeFixer
from cicd_orchestrator.repair.base import Fixer
from cicd_orchestrator.repair.dependency import MissingDependencyFixer
from cicd_orchestrator.repair.flaky import FlakyTestFixer
from cicd_orchestrator.repair.formatters import (
    BlackFixer,
    EslintFixer,
    IsortFixer,
    PreCommitFixer,
    PrettierFixer,
)
from cicd_orchestrator.repair.invalid_workflow import InvalidWorkflowFixer
from cicd_orchestrator.repair.js_format import JsFormatFixer
from cicd_orchestrator.repair.k8s import KubernetesSchemaFixer
from cicd_orchestrator.repair.llm import LLMPatchFixer
from cicd_orchestrator.repair.manifest import ManifestFixer
from cicd_orchestrator.repair.missing_access import MissingAccessFixer
from cicd_orchestrator.repair.npm_dependency import NpmDependencyFixer
from cicd_orchestrator.repair.pinning import PinDependencyFixer
from cicd_orchestrator.repair.quarantine import QuarantineFixer
from cicd_orchestrator.repair.rerun import RerunFixer
from cicd_orchestrator.repair.revert import RevertFixer
from cicd_orchestrator.repair.ruff import RuffFixer
from cicd_orchestrator.repair.workflow_path import WorkflowPathFixer

FIXERS: dict[str, Fixer] = {
    f.name: f
    for f in (
        RuffFixer(),
        PreCommitFixer(),
        BlackFixer(),
        IsortFixer(),
        PrettierFixer(),
        EslintFixer(),
        JsFormatFixer(),
        RerunFixer(),
        FlakyTestFixer(),
        QuarantineFixer(),
        MissingDependencyFixer(),
        NpmDependencyFixer(),
        PinDependencyFixer(),
        ManifestFixer(),
        KubernetesSchemaFixer(),
        ActionUpgradeFixer(),
        InvalidWorkflowFixer(),
        MissingAccessFixer(),
        WorkflowPathFixer(),
        RevertFixer(),
        LLMPatchFixer(),
    )
}

CATEGORY_FIXERS: dict[FailureCategory, tuple[str, ...]] = {
    FailureCategory.BUILD: ("add-requirement", "add-npm-dependency", "pin-dependency"),
    FailureCategory.TEST: ("add-requirement", "add-npm-dependency", "pin-dependency", "flaky-test"),
    FailureCategory.QUALITY: (
        "ruff",
        "pre-commit",
        "black",
        "isort",
        "prettier",
        "eslint",
        "js-format",
    ),
    FailureCategory.DEPLOYMENT: ("manifest", "k8s-schema"),
    FailureCategory.CONFIGURATION: (
        "upgrade-action",
        "invalid-workflow",
        "missing-access",
        "workflow-path",
    ),
    FailureCategory.INFRASTRUCTURE: ("rerun",),
    FailureCategory.FLAKY: ("flaky-test", "quarantine"),
}

# The fixing tasks of the parallel strategies: one per category group.
FIXING_GROUPS: dict[str, tuple[FailureCategory, ...]] = {
    "build": (FailureCategory.BUILD,),
    "test": (FailureCategory.TEST, FailureCategory.FLAKY),
    "quality": (FailureCategory.QUALITY,),
    "deployment": (FailureCategory.DEPLOYMENT,),
    "configuration": (FailureCategory.CONFIGURATION,),
    "infrastructure": (FailureCategory.INFRASTRUCTURE,),
    # the optional LLM patch looks at every root failure (strategy 2 only)
    "llm": tuple(c for c in FailureCategory if c is not FailureCategory.UNKNOWN),
}
GROUP_FIXERS: dict[str, tuple[str, ...]] = {"llm": ("llm-patch",)}


def fixers_for_category(category: FailureCategory) -> list[Fixer]:
    return [FIXERS[name] for name in CATEGORY_FIXERS.get(category, ())]


def fixers_for_group(group: str) -> list[Fixer]:
    if group in GROUP_FIXERS:
        return [FIXERS[name] for name in GROUP_FIXERS[group]]
    seen: list[Fixer] = []
    for category in FIXING_GROUPS[group]:
        for fixer in fixers_for_category(category):
            if fixer not in seen:
                seen.append(fixer)
    return seen

"""Which fixers serve which failure category (data, not branches in the DAGs)."""

from __future__ import annotations

from cicd_orchestrator.constants import FailureCategory
from cicd_orchestrator.repair.base import Fixer
from cicd_orchestrator.repair.dependency import MissingDependencyFixer
from cicd_orchestrator.repair.flaky import FlakyTestFixer
from cicd_orchestrator.repair.manifest import ManifestFixer
from cicd_orchestrator.repair.rerun import RerunFixer
from cicd_orchestrator.repair.revert import RevertFixer
from cicd_orchestrator.repair.ruff import RuffFixer

FIXERS: dict[str, Fixer] = {
    f.name: f
    for f in (
        RuffFixer(),
        RerunFixer(),
        RevertFixer(),
        FlakyTestFixer(),
        MissingDependencyFixer(),
        ManifestFixer(),
    )
}

CATEGORY_FIXERS: dict[FailureCategory, tuple[str, ...]] = {
    FailureCategory.BUILD: ("add-requirement",),
    FailureCategory.TEST: ("add-requirement", "flaky-test"),
    FailureCategory.QUALITY: ("ruff",),
    FailureCategory.DEPLOYMENT: ("manifest",),
    FailureCategory.CONFIGURATION: (),
    FailureCategory.INFRASTRUCTURE: ("rerun",),
    FailureCategory.FLAKY: ("flaky-test",),
}

# The fixing tasks of the parallel strategies: one per category group.
FIXING_GROUPS: dict[str, tuple[FailureCategory, ...]] = {
    "build": (FailureCategory.BUILD,),
    "test": (FailureCategory.TEST, FailureCategory.FLAKY),
    "quality": (FailureCategory.QUALITY,),
    "deployment": (FailureCategory.DEPLOYMENT,),
    "configuration": (FailureCategory.CONFIGURATION,),
    "infrastructure": (FailureCategory.INFRASTRUCTURE,),
}


def fixers_for_category(category: FailureCategory) -> list[Fixer]:
    return [FIXERS[name] for name in CATEGORY_FIXERS.get(category, ())]


def fixers_for_group(group: str) -> list[Fixer]:
    seen: list[Fixer] = []
    for category in FIXING_GROUPS[group]:
        for fixer in fixers_for_category(category):
            if fixer not in seen:
                seen.append(fixer)
    return seen

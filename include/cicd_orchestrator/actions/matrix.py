"""A job's matrix and the names of its instances, as GitHub forms them.

:func:`expand_matrix` is GitHub's expansion: the product of the matrix's lists in key
order, minus ``exclude``, with ``include`` extending every combination whose values it
matches (its other keys are added) and adding the includes that match none as combinations
of their own (their matrix keys first, then the others).

A job instance's name (:func:`instance_name`) is, as GitHub names it:

- a ``name`` with an expression: the evaluated name (``Python ${{ matrix.python }}`` gives
  ``Python 3.11``), with no suffix; the expression sees ``github``, ``inputs``, ``vars``,
  ``matrix`` and ``strategy`` (not ``env``);
- otherwise the ``name`` (or the job's key) followed, for a matrix job, by the values of the
  combination in brackets: ``test (3.11, ubuntu-latest)``. The values are the combination's
  before ``include`` extended it (an include's added keys are not in the name of a
  combination it extends, and all its values are in the name of one it adds); an object or
  a list shows its scalar values in order, empty strings and nulls are left out, and a name
  longer than 100 characters is cut to 97 and ``...``.

:func:`resolve_job_names` finds the local instances of the job names a CI provider reports
(exactly, by GitHub's cut name, or by the name's template when it uses contexts whose values
differ locally, such as ``github.event_name``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cicd_orchestrator.actions import expressions
from cicd_orchestrator.exceptions import WorkflowError

if TYPE_CHECKING:
    from cicd_orchestrator.actions.workflow import JobInstance, JobSpec

#: GitHub cuts a job name longer than this to ``MAX_NAME_LENGTH - 3`` characters and "..."
MAX_NAME_LENGTH = 100
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
#: contexts of a job name whose values a local replay may not share with the CI run
_RUN_CONTEXTS = re.compile(r"\b(?:github|inputs|vars|needs)\b")

Combination = tuple[dict[str, Any], list[str]]


def expand_matrix(matrix: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """GitHub's matrix expansion (see the module docstring): the combinations."""
    return [combo for combo, _ in expand_matrix_named(matrix)]


def expand_matrix_named(matrix: Mapping[str, Any] | None) -> list[Combination]:
    """Each combination with the values GitHub names it by."""
    if not matrix:
        return [({}, [])]
    base_keys = [k for k in matrix if k not in ("include", "exclude")]
    for k in base_keys:
        if not isinstance(matrix[k], list):
            raise WorkflowError(f"matrix.{k} must be a list")
    combos = (
        [
            dict(zip(base_keys, values, strict=True))
            for values in itertools.product(*(matrix[k] for k in base_keys))
        ]
        if base_keys
        else []
    )
    for exc in _as_dicts(matrix.get("exclude")):
        combos = [c for c in combos if not all(_eq(c.get(k), v) for k, v in exc.items())]
    result: list[Combination] = [(dict(c), name_values(c)) for c in combos]
    for inc in _as_dicts(matrix.get("include")):
        added = False
        for (combo, _), original in zip(result, combos, strict=False):
            if all(_eq(original[k], v) for k, v in inc.items() if k in original):
                # an include may not overwrite an original value; it may overwrite added ones
                combo.update({k: v for k, v in inc.items() if k not in original})
                added = True
        if not added:
            new = {k: v for k, v in inc.items() if k in base_keys}
            new.update({k: v for k, v in inc.items() if k not in base_keys})
            result.append((new, name_values(new)))
    return result or [({}, [])]


def _as_dicts(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise WorkflowError("matrix include/exclude must be a list of mappings")
    return [dict(v) for v in value]


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b) or expressions.to_string(a) == expressions.to_string(b)


def name_values(value: Any) -> list[str]:
    """The scalar values of a matrix combination in order, as a job name shows them
    (objects and lists flattened; empty strings and nulls left out)."""
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in name_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in name_values(v)]
    if value is None:
        return []
    text = expressions.to_string(value)
    return [text] if text else []


def cut_name(name: str) -> str:
    """A job name as GitHub stores it: at most ``MAX_NAME_LENGTH`` characters."""
    if len(name) <= MAX_NAME_LENGTH:
        return name
    return name[: MAX_NAME_LENGTH - 3] + "..."


def name_contexts(
    job: JobSpec, combo: Mapping[str, Any], contexts: Mapping[str, Any], index: int, total: int
) -> dict[str, Any]:
    """The contexts a job's name sees: ``github``, ``inputs``, ``vars`` from ``contexts``,
    and the instance's ``matrix`` and ``strategy`` (never ``env``)."""
    ctxs = {k: v for k, v in contexts.items() if k in ("github", "inputs", "vars", "needs")}
    ctxs["matrix"] = dict(combo)
    ctxs["strategy"] = {
        "fail-fast": job.fail_fast,
        "job-index": index,
        "job-total": total,
        "max-parallel": total,
    }
    return ctxs


def instance_name(
    job: JobSpec,
    combo: Mapping[str, Any],
    contexts: Mapping[str, Any],
    values: list[str] | None = None,
) -> str:
    """The job instance's name as GitHub shows it (see the module docstring); ``values``:
    the values that name the combination (default: all of ``combo``'s)."""
    if job.name and "${{" in job.name:
        ctxs = {**contexts}
        ctxs.setdefault("matrix", dict(combo))
        return expressions.interpolate(job.name, ctxs)
    base = job.name or job.key
    shown = name_values(combo) if values is None else values
    return cut_name(f"{base} ({', '.join(shown)})" if combo and shown else base)


# --------------------------------------------------------------------------- matching names
def resolve_job_names(
    instances: Iterable[JobInstance], names: Iterable[str]
) -> dict[str, list[str]]:
    """The local instances (by name) of each job name a CI provider reported: the instance
    of that name; else the one GitHub's cut name stands for; else, for a name with
    expressions, the one whose template matches (run contexts match anything); else every
    instance of a job key of that name. An unknown name has no instance."""
    insts = list(instances)
    return {name: _resolve(insts, name) for name in names}


def _resolve(instances: list[JobInstance], name: str) -> list[str]:
    exact = [i.name for i in instances if i.name == name]
    if exact:  # several when GitHub's cut makes long names the same
        return exact
    if name.endswith("...") and len(name) == MAX_NAME_LENGTH:
        cut = [i.name for i in instances if cut_name(i.name) == name]
        if len(cut) == 1:
            return cut
    templated = [i.name for i in instances if _template_matches(i, name)]
    if len(templated) == 1:
        return templated
    return [i.name for i in instances if i.key == name]


def _template_matches(instance: JobInstance, name: str) -> bool:
    template = instance.spec.name
    if not template or "${{" not in template:
        return False
    ctxs = {"matrix": instance.matrix, "strategy": {"fail-fast": instance.spec.fail_fast}}
    parts: list[str] = []
    pos = 0
    for m in _EXPRESSION.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        if _RUN_CONTEXTS.search(m.group(1)):
            parts.append(".*")
        else:
            try:
                parts.append(re.escape(expressions.interpolate(m.group(0), ctxs)))
            except WorkflowError:
                parts.append(".*")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.fullmatch("".join(parts), name, re.DOTALL) is not None

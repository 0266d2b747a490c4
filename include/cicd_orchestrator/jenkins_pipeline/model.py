"""A declarative Jenkins pipeline as stages of replayable steps.

:func:`parse_jenkinsfile` reads ``pipeline { agent ...; environment { ... }; stages { ... } }``:
stages (nested ``stages`` and ``parallel`` inside a stage), their ``environment``, ``when``
and ``steps``. The steps replayed are ``sh`` (its ``script``, ``returnStatus``), ``echo``,
``error``, ``dir``, ``withEnv``, ``timeout``, ``sleep`` and ``checkout scm`` (the workspace is
already the checkout); anything else that may change the outcome (a ``script { ... }``
block, ``withCredentials``, ``docker.image``, a plugin or library step) makes its stage not
replayable, with the reason. ``post`` and the pipeline's options are not replayed (a note
says so). A scripted pipeline (``node { ... }``) is not replayable as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cicd_orchestrator.jenkins_pipeline import groovy
from cicd_orchestrator.jenkins_pipeline.groovy import Call, JenkinsfileError, Node, Raw, Str

#: a step: ("sh", script Str, return_status) | ("echo", Str) | ("error", Str) |
#: ("dir", Str, steps) | ("withEnv", [Str], steps) | ("timeout", seconds, steps) | ("noop", why)
Step = tuple[Any, ...]
_UNITS = {"SECONDS": 1.0, "MINUTES": 60.0, "HOURS": 3600.0, "DAYS": 86400.0}
_NOTED_SECTIONS = frozenset({"options", "parameters", "triggers", "tools", "libraries", "input"})


@dataclass
class Stage:
    """One stage: its own steps, or the stages nested in it (sequential or parallel)."""

    name: str
    line: int
    environment: list[tuple[str, Any]] = field(default_factory=list)
    when: Node | None = None
    steps: list[Step] = field(default_factory=list)
    children: list[Stage] = field(default_factory=list)
    parallel: bool = False
    image: str | None = None
    notes: list[str] = field(default_factory=list)
    not_replayable: str | None = None

    def leaves(self) -> list[Stage]:
        """This stage when it has steps, else the stages nested in it, in order."""
        if not self.children:
            return [self]
        return [leaf for child in self.children for leaf in child.leaves()]

    def walk(self) -> list[Stage]:
        return [self, *(s for child in self.children for s in child.walk())]


@dataclass
class JenkinsPipeline:
    """A parsed Jenkinsfile (see the module docstring)."""

    path: str
    stages: list[Stage] = field(default_factory=list)
    environment: list[tuple[str, Any]] = field(default_factory=list)
    image: str | None = None
    notes: list[str] = field(default_factory=list)
    #: why the whole pipeline cannot be replayed (a scripted pipeline), or None
    not_replayable: str | None = None

    def all_stages(self) -> list[Stage]:
        return [s for stage in self.stages for s in stage.walk()]

    def leaves(self) -> list[Stage]:
        return [leaf for stage in self.stages for leaf in stage.leaves()]


def parse_jenkinsfile(text: str, path: str) -> JenkinsPipeline:
    """The pipeline of a Jenkinsfile (JenkinsfileError when it cannot be read)."""
    nodes = groovy.parse(text, path)
    pipeline = JenkinsPipeline(path)
    block = next((n for n in nodes if n.name == "pipeline" and n.body is not None), None)
    if block is None:
        if any(n.name in ("node", "stage") for n in nodes):
            pipeline.not_replayable = "a scripted pipeline (node { ... }) is Groovy code"
        else:
            raise JenkinsfileError(path, None, "no pipeline { ... } block")
        return pipeline
    for node in block.body or []:
        _pipeline_section(pipeline, node)
    if not pipeline.stages:
        raise JenkinsfileError(path, block.line, "the pipeline has no stages")
    return pipeline


def _pipeline_section(pipeline: JenkinsPipeline, node: Node) -> None:
    if node.name == "agent":
        pipeline.image = _agent_image(node)
    elif node.name == "environment":
        pipeline.environment = _environment(node)
    elif node.name == "stages":
        pipeline.stages = [_stage(n, pipeline.path) for n in _stage_nodes(node, pipeline.path)]
    elif node.name == "post":
        pipeline.notes.append("post: the pipeline's post conditions are not replayed")
    elif node.name in _NOTED_SECTIONS:
        pipeline.notes.append(f"{node.name}: not replayed locally; ignored")
    else:
        pipeline.notes.append(f"{node.name}: unknown pipeline section; ignored")


def _stage_nodes(node: Node, path: str) -> list[Node]:
    out = []
    for child in node.body or []:
        if child.name != "stage" or child.body is None:
            raise JenkinsfileError(path, child.line, f"{node.name} holds only stage blocks")
        out.append(child)
    return out


def _agent_image(node: Node) -> str | None:
    """The container image an ``agent`` names (``docker { image 'x' }``), if any."""
    for child in node.body or []:
        if child.name == "docker":
            image = child.kwargs.get("image") or child.arg()
            for inner in child.body or []:
                if inner.name == "image":
                    image = inner.arg()
            return image.value if isinstance(image, Str) else "docker"
        if child.name == "dockerfile":
            return "dockerfile"
    return None


def _environment(node: Node) -> list[tuple[str, Any]]:
    return [(n.name, n.value) for n in node.body or [] if n.value is not None]


def _stage(node: Node, path: str) -> Stage:
    name = node.arg()
    if not isinstance(name, Str):
        raise JenkinsfileError(path, node.line, "a stage needs a name: stage('Name') { ... }")
    stage = Stage(name.value, node.line)
    for child in node.body or []:
        _stage_section(stage, child, path)
    if not stage.steps and not stage.children and stage.not_replayable is None:
        raise JenkinsfileError(path, node.line, f"stage {stage.name} has no steps")
    return stage


def _stage_section(stage: Stage, node: Node, path: str) -> None:
    if node.name == "steps":
        stage.steps = _steps(node.body or [], stage)
    elif node.name in ("stages", "parallel"):
        stage.children = [_stage(n, path) for n in _stage_nodes(node, path)]
        stage.parallel = node.name == "parallel"
    elif node.name == "environment":
        stage.environment = _environment(node)
    elif node.name == "when":
        stage.when = node
    elif node.name == "agent":
        stage.image = _agent_image(node)
    elif node.name == "post":
        stage.notes.append("post: the stage's post conditions are not replayed")
    elif node.name == "matrix":
        stage.not_replayable = "a matrix stage is not replayed"
    elif node.name == "input":
        stage.not_replayable = "input waits for a person"
    elif node.name in _NOTED_SECTIONS or node.name in ("failFast", "options"):
        stage.notes.append(f"{node.name}: not replayed locally; ignored")
    else:
        stage.not_replayable = f"{node.name} in a stage is not replayed"


# --------------------------------------------------------------------------- steps
def _steps(nodes: list[Node], stage: Stage) -> list[Step]:
    out: list[Step] = []
    for node in nodes:
        step = _step(node)
        if isinstance(step, str):
            stage.not_replayable = stage.not_replayable or step
        else:
            out.append(step)
    return out


def _nested(node: Node, stage_steps: list[Step], why: list[str]) -> list[Step]:
    holder = Stage("", node.line)
    stage_steps.extend(_steps(node.body or [], holder))
    if holder.not_replayable:
        why.append(holder.not_replayable)
    return stage_steps


def _step(node: Node) -> Step | str:
    """A replayable step, or why the node is not replayable."""
    simple = _simple_step(node)
    if simple is not None:
        return simple
    if node.name in ("dir", "withEnv", "timeout") and node.body is not None:
        why: list[str] = []
        inner = _nested(node, [], why)
        if why:
            return why[0]
        return _wrapper(node, inner)
    if node.name == "script":
        return "script { ... } is Groovy code"
    if node.name == groovy.GROOVY:
        return f"Groovy code: {node.text[:80]}"
    return f"the step {node.name} is not replayed (a plugin, library or credentials step)"


def _simple_step(node: Node) -> Step | str | None:
    if node.body is not None:
        return None
    if node.name == "sh":
        script = node.kwargs.get("script", node.arg())
        if not isinstance(script, Str):
            return "sh with a computed script is Groovy code"
        if node.kwargs.get("returnStdout") is True:
            return "sh returnStdout only feeds Groovy code"
        return ("sh", script, node.kwargs.get("returnStatus") is True)
    if node.name in ("echo", "error"):
        message = node.kwargs.get("message", node.arg())
        if not isinstance(message, Str):
            return f"{node.name} with a computed message is Groovy code"
        return (node.name, message)
    if node.name == "checkout" and isinstance(node.arg(), Raw) and node.arg().text == "scm":
        return ("noop", "checkout scm: the workspace is already a checkout of the commit")
    if node.name == "sleep":
        return ("noop", "sleep: not waited locally")
    return None


def _wrapper(node: Node, inner: list[Step]) -> Step | str:
    if node.name == "dir":
        path = node.kwargs.get("path", node.arg())
        return ("dir", path, inner) if isinstance(path, Str) else "dir with a computed path"
    if node.name == "withEnv":
        pairs = node.arg()
        if isinstance(pairs, Raw):
            return ("withEnv", _string_list(pairs.text), inner)
        return "withEnv with a computed list"
    seconds = _timeout_seconds(node)
    return ("timeout", seconds, inner) if seconds is not None else "timeout with a computed time"


def _string_list(text: str) -> list[Str]:
    tokens = groovy.tokenize(text, "withEnv")
    return [groovy.string_value(t.text) for t in tokens if t.kind == "str"]


def _timeout_seconds(node: Node) -> float | None:
    amount = node.kwargs.get("time", node.arg())
    unit = node.kwargs.get("unit", Raw("MINUTES"))
    unit_text = unit.value if isinstance(unit, Str) else unit.text if isinstance(unit, Raw) else ""
    if not isinstance(amount, (int, float)) or isinstance(amount, bool):
        return None
    return float(amount) * _UNITS.get(unit_text.split(".")[-1].upper(), 60.0)


def is_call(value: Any, name: str) -> bool:
    return isinstance(value, Call) and value.name == name

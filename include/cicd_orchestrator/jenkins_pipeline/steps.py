"""Running a stage's steps: ``sh`` as Jenkins runs it, ``echo``, ``error``, ``dir``,
``withEnv``, ``timeout`` and the steps that do nothing locally."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cicd_orchestrator.actions.host import HostJob, PlainLog
from cicd_orchestrator.actions.step_process import StepOutcome
from cicd_orchestrator.constants import Conclusion
from cicd_orchestrator.jenkins_pipeline.model import Step
from cicd_orchestrator.jenkins_pipeline.values import NotReplayable, interpolate

#: ``dir('x')`` as Jenkins does it: the folder is made when it is missing (in the sandbox)
_IN_DIR = 'mkdir -p -- "$1" && cd -- "$1" && shift && exec "$@"'


class _StepFailed(Exception):
    def __init__(self, conclusion: Conclusion) -> None:
        super().__init__(conclusion.value)
        self.conclusion = conclusion


@dataclass
class StepRunner:
    """The steps of one stage, in the shared workspace."""

    host: HostJob
    jl: PlainLog
    env: dict[str, str]
    deadline: float

    def run(self, steps: list[Step]) -> Conclusion:
        try:
            self._steps(steps, self.env, "", self.deadline)
        except _StepFailed as exc:
            return exc.conclusion
        except NotReplayable as exc:
            self.jl.write(f"cannot replay locally: {exc}")
            return Conclusion.NEUTRAL
        return Conclusion.SUCCESS

    def _steps(
        self, steps: list[Step], env: Mapping[str, str], folder: str, deadline: float
    ) -> None:
        for step in steps:
            self._step(step, env, folder, deadline)

    def _step(self, step: Step, env: Mapping[str, str], folder: str, deadline: float) -> None:
        kind = step[0]
        jl = self.jl
        if kind == "sh":
            self._sh(interpolate(step[1], env), step[2], env, folder, deadline)
        elif kind == "echo":
            jl.write("[Pipeline] echo")
            jl.write(interpolate(step[1], env))
        elif kind == "error":
            jl.write("[Pipeline] error")
            jl.write(f"ERROR: {interpolate(step[1], env)}")
            raise _StepFailed(Conclusion.FAILURE)
        elif kind == "noop":
            jl.write(f"NOTE: {step[1]}")
        elif kind == "dir":
            path = interpolate(step[1], env)
            jl.write("[Pipeline] dir")
            jl.write(f"Running in {path}")
            inner = os.path.join(folder, path) if folder else path
            self._steps(step[2], env, inner, deadline)
        elif kind == "withEnv":
            jl.write("[Pipeline] withEnv")
            pairs = [interpolate(p, env).partition("=") for p in step[1]]
            self._steps(step[2], {**env, **{k: v for k, _, v in pairs}}, folder, deadline)
        elif kind == "timeout":
            jl.write("[Pipeline] timeout")
            jl.write(f"Timeout set to expire in {step[1]:g} sec")
            self._steps(step[2], env, folder, min(deadline, time.monotonic() + step[1]))

    def _sh(
        self, script: str, return_status: bool, env: Mapping[str, str], folder: str, deadline: float
    ) -> None:
        jl, host = self.jl, self.host
        jl.write("[Pipeline] sh")
        path = host.write_script(f"script-{time.monotonic_ns()}.sh", script)
        if script.startswith("#!"):
            path.chmod(0o755)
            argv = [str(path)]
        else:
            argv = ["sh", "-xe", str(path)]
        if folder:
            argv = ["sh", "-c", _IN_DIR, "sh", folder, *argv]
        remaining = deadline - time.monotonic()
        outcome = host.run(argv, env=host.env(env), log=jl, timeout=max(remaining, 0.0))
        self._check(outcome, return_status)

    def _check(self, outcome: StepOutcome, return_status: bool) -> None:
        jl = self.jl
        if outcome.error:
            jl.write(f"ERROR: {outcome.error}")
            raise _StepFailed(Conclusion.FAILURE)
        if outcome.capped:
            jl.write(
                f"ERROR: the step wrote more than {self.host.settings.output_cap_bytes} bytes "
                "of output and was stopped"
            )
            raise _StepFailed(Conclusion.FAILURE)
        if outcome.timed_out:
            jl.write("Timeout has been exceeded")
            raise _StepFailed(Conclusion.TIMED_OUT)
        if outcome.exit_code != 0 and not return_status:
            jl.write(f"ERROR: script returned exit code {outcome.exit_code}")
            raise _StepFailed(Conclusion.FAILURE)

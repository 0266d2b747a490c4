"""One step of a job: whether it runs, what the log says of it, its command and its result.

A ``run`` step is written to a script in ``RUNNER_TEMP`` and run by its shell in the job's
workspace (see :mod:`cicd_orchestrator.actions.step_process`), in the job's container when
it has one (:mod:`cicd_orchestrator.actions.pod`); a ``uses`` step (an action)
is done the local way by :mod:`cicd_orchestrator.actions.setup_actions` (the setup actions
choose an installed interpreter or tool; the others are not run and the log says so). The
sandbox of a step shows the folders :meth:`JobState.readable` names. A step's
``outcome`` and ``conclusion`` differ only for a step allowed to fail
(``continue-on-error``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cicd_orchestrator.actions import expressions, setup_actions
from cicd_orchestrator.actions.job_state import (
    CANCELLED,
    FAILURE,
    SUCCESS,
    JobState,
    status_fn,
    timeout_seconds,
)
from cicd_orchestrator.actions.results import utc_now
from cicd_orchestrator.actions.run_info import RUNNER_NAME
from cicd_orchestrator.actions.step_process import CommandFiles, StepOutcome, run_process
from cicd_orchestrator.actions.workflow import DEFAULT_BASH, SHELLS, StepSpec
from cicd_orchestrator.constants import Conclusion, RunStatus
from cicd_orchestrator.exceptions import WorkflowError
from cicd_orchestrator.models import Step


class StepResult(NamedTuple):
    """``steps.<id>.outcome`` and ``steps.<id>.conclusion``."""

    outcome: Conclusion
    conclusion: Conclusion


_PASSED = StepResult(Conclusion.SUCCESS, Conclusion.SUCCESS)
_FAILED = StepResult(Conclusion.FAILURE, Conclusion.FAILURE)
_SKIPPED = StepResult(Conclusion.SKIPPED, Conclusion.SKIPPED)
_ALLOWED_TO_FAIL = StepResult(Conclusion.FAILURE, Conclusion.SUCCESS)


def run_step(state: JobState, step: StepSpec) -> None:
    """Run one step of the job (or skip it) and record it in the job and in ``steps``."""
    execution = state.execution
    env = state.declared_env(step)
    ctx = state.contexts(env)
    name = state.interpolate(step.name, ctx) if step.name else step.default_name
    record = Step(number=len(execution.steps) + 1, name=name, status=RunStatus.IN_PROGRESS)
    execution.steps.append(record)
    result = _StepRun(state, step, env, ctx).result()
    record.status = RunStatus.COMPLETED
    record.conclusion = result.conclusion
    if result.conclusion is not Conclusion.SKIPPED:
        record.started_at = record.started_at or utc_now()
        record.completed_at = utc_now()
    if step.id:
        entry = state.steps_ctx.setdefault(step.id, {"outputs": {}})
        entry["outcome"] = result.outcome.value
        entry["conclusion"] = result.conclusion.value


@dataclass
class _StepRun:
    """One step of a job with its ``env`` and expression contexts."""

    state: JobState
    step: StepSpec
    env: dict[str, str]
    ctx: dict[str, Any]

    def result(self) -> StepResult:
        """Run the step if its condition holds."""
        state, step = self.state, self.step
        skipped_or_failed = self._condition_result()
        if skipped_or_failed is not None:
            return skipped_or_failed
        state.execution.steps[-1].started_at = utc_now()
        passed = self._run_action() if step.uses is not None else self._run_command()
        if passed:
            return _PASSED
        if not state.timed_out and expressions.evaluate_flag(step.continue_on_error, self.ctx):
            return _ALLOWED_TO_FAIL
        state.fail()
        return _FAILED

    def _condition_result(self) -> StepResult | None:
        """The result of a step that does not run (the job was cancelled or timed out, its
        condition is false or invalid); None when it runs."""
        state = self.state
        if state.cancel.is_set() and state.status == SUCCESS:
            state.status = CANCELLED
        if state.timed_out or state.cancel.is_set():
            return _SKIPPED
        try:
            run_it = expressions.evaluate_condition(
                self.step.if_, self.ctx, status_fn(state.status)
            )
        except WorkflowError as exc:
            state.job_log.write(f"##[error]The step's condition is invalid: {exc}")
            state.status = FAILURE
            return _FAILED
        return None if run_it else _SKIPPED

    # ------------------------------------------------------------------ uses: an action
    def _run_action(self) -> bool:
        step, jl = self.step, self.state.job_log
        uses = step.uses or ""
        jl.write(f"##[group]Run {uses}")
        inputs: dict[str, str] = {}
        try:
            for k, v in step.with_.items():
                value = expressions.interpolate_value(v, self.ctx) if "${{" in str(v) else v
                inputs[k] = expressions.to_string(value)
        except WorkflowError as exc:
            jl.write("##[endgroup]")
            jl.write(f"##[error]The step's inputs have an invalid expression: {exc}")
            return False
        if inputs:
            jl.write("with:")
            for k, text in inputs.items():
                jl.write(f"  {k}: {text}")
        jl.write("##[endgroup]")
        result = setup_actions.run_action(self.state, uses, inputs)
        if step.id:
            self.state.steps_ctx.setdefault(step.id, {"outputs": {}})["outputs"] = result.outputs
        return result.ok

    # ------------------------------------------------------------------ run: a command
    def _run_command(self) -> bool:
        state, step = self.state, self.step
        try:
            command = expressions.interpolate(step.run or "", self.ctx)
        except WorkflowError as exc:
            state.job_log.write(f"##[error]The step's command has an invalid expression: {exc}")
            return False
        shell_name = step.shell or state.instance.spec.shell or state.info.workflow.shell
        if not shell_name and state.pod is not None and not state.pod.has_bash:
            shell_name = "sh"  # as GitHub does in a container without bash
        template = SHELLS.get(shell_name or "bash", shell_name or DEFAULT_BASH)
        self._log_command(command, template)
        return self._execute(command, template)

    def _log_command(self, command: str, template: str) -> None:
        jl = self.state.job_log
        first = next((ln for ln in command.splitlines() if ln.strip()), "")
        jl.write(f"##[group]Run {first.strip()}")
        for line in command.rstrip("\n").split("\n"):
            jl.write(line)
        jl.write(f"shell: {self._shell_display(template)}")
        if self.env:
            jl.write("env:")
            for k, v in self.env.items():
                jl.write(f"  {k}: {v.splitlines()[0] if v else ''}")
        jl.write("##[endgroup]")

    def _shell_display(self, template: str) -> str:
        if self.state.in_container:
            return template
        parts = template.split(" ", 1)
        exe = shutil.which(parts[0], path=os.pathsep.join(self.state.path())) or parts[0]
        return " ".join([exe, *parts[1:]])

    def _execute(self, command: str, template: str) -> bool:
        state, step = self.state, self.step
        files = CommandFiles.create(state.runner_temp)
        ext = ".py" if template.split(" ", 1)[0].endswith(("python", "python3")) else ".sh"
        script = state.runner_temp / f"{uuid.uuid4()}{ext}"
        script.write_text(command if command.endswith("\n") else command + "\n", encoding="utf-8")
        argv = [a.replace("{0}", str(script)) for a in shlex.split(template)]
        if "{0}" not in template:
            argv.append(str(script))
        cwd = self._working_directory()
        if not cwd.is_dir():
            state.job_log.write(f"##[error]The working directory '{cwd}' does not exist.")
            return False
        timeout = self._timeout()
        outputs: dict[str, str] = {}
        env = state.process_env(self.env, files)
        placed: dict[str, Any] = {}
        if state.pod is not None:
            paths = list(files.paths.values())
            state.pod.hand_over([script, paths[0].parent, *paths])
            argv, placed = state.pod.placement(argv, cwd=str(cwd), env=env)
        result = run_process(
            argv,
            cwd=str(cwd),
            env=env,
            job_log=state.job_log,
            timeout=timeout,
            output_cap=state.settings.output_cap_bytes,
            cancel=state.cancel,
            outputs=outputs,
            groups=state.groups,
            writable=[str(d) for d in state.folders()],
            readable=state.readable(),
            network=state.settings.network_allowlist,
            **placed,
        )
        outputs.update(files.outputs())
        if step.id:
            state.steps_ctx.setdefault(step.id, {"outputs": {}})["outputs"] = outputs
        state.env_added.update(files.env_added())
        state.path_added.extend(files.path_added())
        return self._report(result, timeout)

    def _working_directory(self) -> Path:
        state = self.state
        wd = (
            self.step.working_directory
            or state.instance.spec.working_directory
            or state.info.workflow.working_directory
        )
        if not wd:
            return state.workspace
        return state.workspace / expressions.interpolate(wd, self.ctx)

    def _timeout(self) -> float | None:
        """The step's own timeout, within what is left of the job's."""
        remaining = self.state.remaining()
        own = timeout_seconds(self.step.timeout_minutes, self.ctx)
        if own is None:
            return remaining
        return own if remaining is None else min(own, remaining)

    # ------------------------------------------------------------------ what the log says
    def _report(self, result: StepOutcome, timeout: float | None) -> bool:
        """Write why the step failed, if it did; returns whether it passed."""
        state = self.state
        jl = state.job_log
        if result.error:
            jl.write(f"##[error]{result.error}")
        elif result.capped:
            jl.write(
                f"##[error]The step wrote more than {state.settings.output_cap_bytes} bytes "
                "of output; the rest was not recorded and the step was stopped."
            )
        elif result.timed_out:
            self._report_timeout(timeout)
        elif result.cancelled:
            state.status = CANCELLED
            jl.write("##[error]The operation was canceled.")
        elif result.exit_code != 0:
            jl.write(f"##[error]Process completed with exit code {result.exit_code}.")
        else:
            return True
        return False

    def _report_timeout(self, timeout: float | None) -> None:
        state = self.state
        if state.deadline is not None and time.monotonic() >= state.deadline:
            state.timed_out = True
            state.status = CANCELLED
            minutes = (state.timeout_minutes() or 0) or (timeout or 0) / 60
            state.job_log.write(
                f"##[error]The job running on runner {RUNNER_NAME} has exceeded the "
                f"maximum execution time of {minutes:g} minutes."
            )
        state.job_log.write("##[error]The action has timed out.")

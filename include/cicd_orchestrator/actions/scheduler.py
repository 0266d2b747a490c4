"""The scheduler of a workflow's jobs: ``needs``, job conditions and fail-fast.

A job instance starts once every job it needs has completed, up to a number of jobs at
once; its ``if:`` sees ``needs.<job>.result`` and ``needs.<job>.outputs``, and ``failure()``
there means a job it depends on (transitively) failed. Jobs not selected for this attempt
are carried over from the previous one, as a re-run of failed jobs does on GitHub.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from cicd_orchestrator.actions import expressions
from cicd_orchestrator.actions.joblog import JobLog
from cicd_orchestrator.actions.results import IdAllocator, JobExecution, needs_result
from cicd_orchestrator.actions.run_info import RunInfo
from cicd_orchestrator.actions.workflow import JobInstance, JobSpec
from cicd_orchestrator.constants import FAILED_CONCLUSIONS, Conclusion, RunStatus
from cicd_orchestrator.exceptions import WorkflowError

log = logging.getLogger(__name__)

#: runs one job instance: (instance, its record, the needs context, its cancellation)
ExecuteFn = Callable[[JobInstance, JobExecution, dict[str, Any], threading.Event], JobExecution]
_Running = dict[concurrent.futures.Future[JobExecution], JobInstance]


class Scheduler:
    """Runs job instances as their needs complete, up to ``workers`` at once."""

    def __init__(
        self,
        info: RunInfo,
        instances: list[JobInstance],
        *,
        selected: set[str] | None,
        previous: dict[str, JobExecution],
        allocate: IdAllocator,
        execute: ExecuteFn,
        notify: Callable[[JobExecution], None],
        workers: int,
    ) -> None:
        self.info = info
        self.execute = execute
        self.notify = notify
        self.workers = workers
        self.results: dict[str, JobExecution] = {}
        self.order = [i.name for i in instances]
        self.todo: list[JobInstance] = []
        self.cancels: dict[str, threading.Event] = {}
        self.specs: dict[str, JobSpec] = {i.key: i.spec for i in instances}
        for inst in instances:
            chosen = selected is None or inst.name in selected or inst.key in selected
            if chosen:
                self.todo.append(inst)
            elif inst.name in previous:
                carried = dataclasses.replace(previous[inst.name], executed=False)
                self.results[inst.name] = carried
        for inst in self.todo:
            self.cancels.setdefault(inst.key, threading.Event())
            self.results[inst.name] = self._queued(inst, allocate())
            notify(self.results[inst.name])

    def _queued(self, inst: JobInstance, job_id: int) -> JobExecution:
        return JobExecution(
            name=inst.name,
            key=inst.key,
            job_id=job_id,
            needs=list(inst.spec.needs),
            matrix=dict(inst.matrix),
            log_path=str(self.info.log_dir / f"{job_id}.log"),
            continue_on_error=False,
            run_attempt=self.info.run_attempt,
        )

    def run(self) -> list[JobExecution]:
        pending = list(self.todo)
        running: _Running = {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.workers) as pool:
            while pending or running:
                self._start_ready(pending, running, pool)
                if not running:
                    if pending:  # cannot happen with a validated workflow; do not spin
                        for inst in pending:
                            self._skip(inst)
                        pending.clear()
                    break
                done, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    inst = running.pop(future)
                    self._finished(inst, future)
        return [self.results[n] for n in self.order if n in self.results]

    def _start_ready(
        self,
        pending: list[JobInstance],
        running: _Running,
        pool: concurrent.futures.ThreadPoolExecutor,
    ) -> None:
        for inst in [i for i in pending if self._ready(i, pending, running)]:
            pending.remove(inst)
            future = self._start(inst, pool)
            if future is not None:
                running[future] = inst

    def _ready(
        self, inst: JobInstance, pending: list[JobInstance], running: Mapping[Any, Any]
    ) -> bool:
        waiting = {i.key for i in pending if i is not inst} | {i.key for i in running.values()}
        return not any(need in waiting for need in inst.spec.needs)

    def _instances_of(self, key: str) -> list[JobExecution]:
        return [e for e in self.results.values() if e.key == key]

    def needs_context(self, spec: JobSpec) -> dict[str, Any]:
        ctx: dict[str, Any] = {}
        for need in spec.needs:
            execs = self._instances_of(need)
            outputs: dict[str, str] = {}
            for e in execs:
                outputs.update(e.outputs)
            ctx[need] = {"result": needs_result(execs), "outputs": outputs}
        return ctx

    def _ancestors(self, key: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.specs[key].needs) if key in self.specs else []
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(self.specs[k].needs if k in self.specs else [])
        return seen

    def _should_run(self, inst: JobInstance, needs: dict[str, Any]) -> bool:
        direct_ok = all(n["result"] == "success" for n in needs.values())
        failed = any(
            needs_result(self._instances_of(k)) == "failure" for k in self._ancestors(inst.key)
        )

        def status(name: str) -> bool:
            if name == "success":
                return direct_ok
            if name == "failure":
                return failed
            return name != "cancelled"

        ctx = {
            "github": self.info.github_context(job=inst.key),
            "needs": needs,
            "matrix": inst.matrix,
            "inputs": self.info.workflow.dispatch_inputs(),
            "vars": {},
            "env": {},
            "secrets": {},
        }
        return expressions.evaluate_condition(inst.spec.if_, ctx, status)

    def _start(
        self, inst: JobInstance, pool: concurrent.futures.ThreadPoolExecutor
    ) -> concurrent.futures.Future[JobExecution] | None:
        execution = self.results[inst.name]
        needs = self.needs_context(inst.spec)
        try:
            run_it = self._should_run(inst, needs)
        except WorkflowError as exc:
            self._fail_condition(inst, exc)
            return None
        if not run_it or self.cancels[inst.key].is_set():
            self._skip(inst, cancelled=self.cancels[inst.key].is_set())
            return None
        ctx = {"matrix": inst.matrix, "needs": needs, "github": self.info.github_context()}
        try:
            execution.continue_on_error = expressions.evaluate_flag(
                inst.spec.continue_on_error, ctx
            )
        except WorkflowError:
            execution.continue_on_error = False
        return pool.submit(self.execute, inst, execution, needs, self.cancels[inst.key])

    def _skip(self, inst: JobInstance, cancelled: bool = False) -> None:
        execution = self.results[inst.name]
        execution.complete_at_once(Conclusion.CANCELLED if cancelled else Conclusion.SKIPPED)
        self.notify(execution)

    def _fail_condition(self, inst: JobInstance, exc: Exception) -> None:
        execution = self.results[inst.name]
        jl = JobLog(execution.log_path)
        jl.write(f"##[error]The job's condition is invalid: {exc}")
        jl.close()
        execution.complete_at_once(Conclusion.FAILURE)
        self.notify(execution)

    def _finished(self, inst: JobInstance, future: concurrent.futures.Future[JobExecution]) -> None:
        execution = self.results[inst.name]
        exc = future.exception()
        if exc is not None:
            log.error("job %s failed in the runner: %s", inst.name, exc)
            execution.status = RunStatus.COMPLETED
            execution.conclusion = Conclusion.FAILURE
            self.notify(execution)
        failed = execution.conclusion in FAILED_CONCLUSIONS and not execution.continue_on_error
        if failed and inst.spec.matrix and inst.spec.fail_fast:
            self.cancels[inst.key].set()

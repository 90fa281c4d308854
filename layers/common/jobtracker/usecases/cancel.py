"""Cancelling a job: at once while it waits, through StopTask once it runs."""

from __future__ import annotations

from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, StopRequest
from jobtracker.core.errors import Conflict, NotFound
from jobtracker.core.lifecycle import Change
from jobtracker.observability import count
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps


def cancel_job(job_id: str, reason: str | None, deps: Deps | None = None) -> Job:
    deps = deps or default_deps()

    def plan(j: Job | None) -> tuple[Change | None, lifecycle.CancelResult]:
        assert j is not None
        result = lifecycle.request_cancel(j, reason, deps.clock())
        return result.change, result

    job, result, _ = write(deps, job_id, plan)
    if job is None or result is None:
        raise NotFound(f"no job with id {job_id!r}")
    if not result.accepted:
        raise Conflict(f"cannot cancel: {result.conflict}")
    if job.is_array:
        from jobtracker.usecases.arrays import hand_off, never_started

        if job.status.terminal:
            never_started(job, deps)  # cancelled while WAITING: it made no children
        else:
            hand_off(job.job_id, deps)  # its children are cancelled behind the answer
    if result.stop_task:
        deps.launcher.stop_task(
            cluster_of(deps, job, result.stop_task),
            result.stop_task,
            lifecycle.STOP_REASONS[StopRequest.CANCEL],
        )
        count("StopTaskCalls")
    return job


def cluster_of(deps: Deps, job: Job, task_arn: str) -> str:
    definition = deps.settings.job_definitions.get(job.definition)
    if definition is not None:
        return definition.cluster
    # arn:aws:ecs:region:account:task/<cluster>/<task id>
    return task_arn.split("/")[-2]

"""Launching an attempt: RunTask with the attempt's clientToken, then record the task (or
the launch failure and when to try again).
"""

from __future__ import annotations

import math

from jobtracker.adapters.launcher import (
    build_run_task,
    log_stream_for,
)
from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, JobStatus, LaunchFailure, StopRequest
from jobtracker.core.lifecycle import Change
from jobtracker.observability import count, logger
from jobtracker.usecases.deadlines import arm
from jobtracker.usecases.handoff import to_launch_queue
from jobtracker.usecases.ports import Work, work_message
from jobtracker.usecases.running_limit import give_back_slot, take_slot
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps


def begin(job: Job, deps: Deps) -> Job:
    """A job just stored: launched, or (an array's parent) its fan-out queued."""
    if job.is_array:
        from jobtracker.usecases.arrays import start_array

        start_array(job, deps)
        return job
    return launch_attempt(job, deps)


def reattach(job: Job, deps: Deps) -> Job:
    """A job a retried request or a redelivered tick finds stored: what its first try began is
    finished (a launch that never happened, an array's fan-out; both safe to repeat)."""
    if job.is_array or lifecycle.launch_due(job, deps.clock()):
        return begin(job, deps)
    return job


def launch_attempt(job: Job, deps: Deps, slot_held: bool = False) -> Job:
    """RunTask for the job's current attempt, then record the task (or the launch failure).
    `slot_held`: the caller took the governor's slot for it (an array's fan-out paces itself).

    Safe to repeat: the clientToken makes ECS hand back the same task for the same attempt.
    """
    number = job.attempt
    if job.is_array:
        return job  # an array's parent runs no task: its children do (usecases/arrays.py)
    definition = deps.settings.job_definitions.get(job.definition)
    if definition is None:
        error = f"job definition {job.definition!r} is no longer configured"
        return _launch_failed(deps, job, number, error, LaunchFailure.FATAL)
    # A definition's running limit first: a job refused a slot takes none of the account's rate.
    limit = take_slot(deps, job.definition, job.job_id, number)
    if limit is not None:
        count("LaunchesLimited")
        full = f"definition {job.definition!r} at its running limit {limit}"
        wait = lifecycle.running_slot_wait(deps.settings, job.launch_waits + 1, deps.rand)
        return _launch_failed(deps, job, number, full, LaunchFailure.WAIT, wait)
    # Every launcher shares the account's launch rate: past it the launch books the next free
    # slot and goes then, unasked (no job write); past the booking horizon the job waits,
    # visibly, and asks again.
    if not slot_held:
        slots, wait = reserve_slots(deps, 1)
        if not slots or slots[0] > 0:
            give_back_slot(deps, job.definition, job.job_id, number)
        if not slots:
            return wait_for_rate(job, wait, deps)
        if slots[0] > 0:
            book_launch(job, slots[0], deps)
            return job
    result = deps.launcher.run_task(build_run_task(job, number, definition))
    count("RunTaskCalls")
    if result.launched:
        assert result.task_arn is not None
        arn = result.task_arn
        stream = log_stream_for(definition, arn)

        def plan(j: Job | None) -> tuple[Change | None, bool]:
            assert j is not None
            return lifecycle.record_launch(j, number, arn, deps.clock(), stream)

        stored, kept, _ = write(deps, job.job_id, plan, known=job)
        if stored is not None and not kept:
            # Cancelled (or moved on) while RunTask was in flight: never let it run.
            deps.launcher.stop_task(
                definition.cluster, arn, lifecycle.STOP_REASONS[StopRequest.CANCEL]
            )
            count("LaunchedThenStopped")
        elif stored is not None:
            arm(stored, deps)  # its timeout and start deadline, to the second
        return stored or job
    count("LaunchFailures")
    # No task: the slot goes to whoever asks next.
    give_back_slot(deps, job.definition, job.job_id, number)
    error = result.error or "unknown launch failure"
    logger.warning("launch failed", extra={"job_id": job.job_id, "attempt": number, "error": error})
    return _launch_failed(deps, job, number, error, result.failure)


def _launch_failed(
    deps: Deps,
    job: Job,
    number: int,
    error: str,
    failure: LaunchFailure,
    wait: float | None = None,
) -> Job:
    def plan(j: Job | None) -> tuple[Change | None, float | None]:
        assert j is not None
        planned = lifecycle.record_launch_failure(
            j, number, error, failure, deps.clock(), deps.settings, deps.rand, wait
        )
        return planned if planned is not None else (None, None)

    stored, wait, written = write(deps, job.job_id, plan, known=job)
    if stored is not None and written and wait is not None:
        schedule_launch(stored, deps)
    return stored or job


def schedule_launch(job: Job, deps: Deps) -> None:
    """Hand the current attempt to the launch queue, delayed until its not_before."""
    from jobtracker.core.domain import parse_iso

    due = parse_iso(job.not_before) or deps.clock()
    delay = max(0.0, (due - deps.clock()).total_seconds())
    message = work_message(Work.LAUNCH, job.job_id, job.attempt)
    to_launch_queue(deps, message, round(delay + 0.49))


def reserve_slots(deps: Deps, wanted: int) -> tuple[list[float], float]:
    """Up to `wanted` governor slots, now or booked within the deployment's booking horizon:
    each one's seconds from now, and the wait for the next when fewer (governor.reserve)."""
    return deps.governor.reserve(deps.clock(), wanted, deps.settings.launch_booking_seconds)


def wait_for_rate(job: Job, wait: float, deps: Deps) -> Job:
    """No slot within the booking horizon: the job waits `wait` seconds, visibly (one write),
    and asks again."""
    count("LaunchesGoverned")
    rate = f"launch rate {deps.settings.launch_rate:g}/s reached"
    return _launch_failed(deps, job, job.attempt, rate, LaunchFailure.WAIT, wait)


def book_launch(job: Job, seconds: float, deps: Deps) -> None:
    """The current attempt launches in `seconds`, on a governor slot booked for then: a LAUNCH
    that will not ask again. Nothing is written on the job (a booking is the governor's one
    write): the reconciler reads how far the governor has booked before it takes a PENDING
    job's launch for lost (lifecycle.deadlines)."""
    count("LaunchesBooked")
    message = {**work_message(Work.LAUNCH, job.job_id, job.attempt), "booked": True}
    # SQS delays are whole seconds: rounded up, a booked launch never goes before its slot
    to_launch_queue(deps, message, math.ceil(seconds))


def handle_launch_message(
    job_id: str, attempt: int, deps: Deps | None = None, booked: bool = False
) -> str:
    """A launch due (`booked`: on a governor slot booked for now)."""
    deps = deps or default_deps()
    job = deps.repo.get(job_id)
    if job is None:
        return "unknown-job"
    if job.attempt != attempt or job.status != JobStatus.PENDING or job.current.task_arn:
        return "not-pending"  # cancelled, launched already, or superseded: nothing to do
    if not lifecycle.launch_due(job, deps.clock()):
        schedule_launch(job, deps)  # waits longer than one SQS delay hop: chain another
        return "rescheduled"
    launch_attempt(job, deps, slot_held=booked)
    return "launched"

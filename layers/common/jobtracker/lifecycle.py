"""Pure state transitions of a job and its attempts. No I/O: every function takes the job,
changes it in place, and says what happened; the callers persist and act on the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from jobtracker.config import JobDefinition, Settings
from jobtracker.domain import (
    Attempt,
    Job,
    JobStatus,
    Outcome,
    StopRequest,
    TaskState,
    client_token,
    history_key,
    iso,
    parse_iso,
)
from jobtracker.policy import Decision, RetryPolicy, backoff_seconds, decide

PRE_RUNNING = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
STOP_REASONS = {
    StopRequest.CANCEL: "jobtracker: cancelled",
    StopRequest.TIMEOUT: "jobtracker: timeout",
    StopRequest.START_TIMEOUT: "jobtracker: start deadline exceeded",
    StopRequest.REPLACED: "jobtracker: replaced by a newer scheduled run",
}
LOST_REASON = "jobtracker: task lost (ECS no longer knows it)"


class Applied(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN = "unknown"


@dataclass
class StateChange:
    applied: Applied
    job_changed: bool = False  # the job's status (or current attempt) moved
    needs_decision: bool = False  # a failed attempt waits for retry_decider
    history_added: bool = False


def new_attempt(job: Job, number: int, now: datetime) -> Attempt:
    return Attempt(
        number=number, client_token=client_token(job.job_id, number), created_at=iso(now)
    )


def _set_status(job: Job, status: JobStatus, now: datetime, reason: str | None = None) -> None:
    job.status = status
    job.updated_at = iso(now) or job.updated_at
    if reason is not None:
        job.status_reason = reason
    if status.terminal:
        job.finished_at = iso(now)
        job.not_before = None


def fast_path_target(state: TaskState) -> tuple[JobStatus | None, frozenset[JobStatus]]:
    """For a non-terminal state: the job status it moves to, and the statuses it may move from.

    This is the same rule as apply_task_state below, restricted to the cases that need no read.
    """
    if state.last_status in PRE_RUNNING:
        return JobStatus.STARTING, frozenset({JobStatus.PENDING, JobStatus.STARTING})
    return JobStatus.RUNNING, frozenset({JobStatus.PENDING, JobStatus.STARTING, JobStatus.RUNNING})


def _deciding(attempt: Attempt, definition: JobDefinition | None) -> None:
    if definition is None:
        return
    names = set(definition.deciding_containers)
    if any(c.name in names for c in attempt.containers):
        for c in attempt.containers:
            c.essential = c.name in names


def succeeded(attempt: Attempt) -> bool:
    """All deciding containers exited 0. A missing exit code is never success."""
    deciding = [c for c in attempt.containers if c.essential] or attempt.containers
    if not deciding or any(c.exit_code != 0 for c in deciding):
        return False
    return attempt.stop_code in (None, "EssentialContainerExited")


def apply_task_state(
    job: Job,
    number: int,
    state: TaskState,
    now: datetime,
    definition: JobDefinition | None = None,
) -> StateChange:
    attempt = job.attempts.get(number)
    if attempt is None:
        return StateChange(Applied.UNKNOWN)
    key = history_key(state.version)
    if state.version <= attempt.version:
        if key not in attempt.history:
            attempt.history[key] = state.history_entry()
            return StateChange(Applied.STALE, history_added=True)
        duplicate = state.version == attempt.version
        # A redelivered STOPPED whose hand-off may have been lost: hand it off again.
        redo = duplicate and attempt.awaiting_decision and number == job.attempt
        return StateChange(Applied.DUPLICATE if duplicate else Applied.STALE, needs_decision=redo)
    attempt.history[key] = state.history_entry()
    attempt.version = state.version
    attempt.last_status = state.last_status
    attempt.task_arn = attempt.task_arn or state.task_arn
    if state.started_at:
        attempt.started_at = state.started_at
    if state.desired_status == "STOPPED" and state.spot_interruption:
        attempt.spot_interruption_at = attempt.spot_interruption_at or state.observed_at
        attempt.stop_code = state.stop_code
        attempt.stopped_reason = state.stopped_reason
    change = StateChange(Applied.APPLIED)
    current = number == job.attempt and not job.status.terminal
    if not state.stopped:
        if current and job.status in (JobStatus.PENDING, JobStatus.STARTING):
            target = JobStatus.STARTING if state.last_status in PRE_RUNNING else JobStatus.RUNNING
            if target != job.status:
                _set_status(job, target, now)
                job.not_before = None
                change.job_changed = True
        return change
    attempt.stopped_at = state.stopped_at or state.observed_at or iso(now)
    attempt.stop_code = state.stop_code
    attempt.stopped_reason = state.stopped_reason
    attempt.containers = [c for c in state.containers]
    _deciding(attempt, definition)
    if not current:
        if attempt.outcome is None:
            attempt.outcome = Outcome.SUCCEEDED if succeeded(attempt) else Outcome.FAIL
        return change
    change.job_changed = True
    if succeeded(attempt):
        attempt.outcome = Outcome.SUCCEEDED
        _set_status(job, JobStatus.SUCCEEDED, now, "succeeded")
    elif job.stop_request == StopRequest.CANCEL:
        attempt.outcome = Outcome.CANCELLED
        _set_status(job, JobStatus.CANCELLED, now, job.status_reason or "cancelled")
    elif job.stop_request == StopRequest.TIMEOUT:
        attempt.outcome = Outcome.TIMED_OUT
        _set_status(job, JobStatus.TIMED_OUT, now, "attempt exceeded timeout_seconds")
    else:
        attempt.awaiting_decision = True
        change.needs_decision = True
    return change


@dataclass
class RetryPlan:
    decision: Decision
    next_attempt: int | None = None
    wait_seconds: float = 0.0


def decide_retry(
    job: Job,
    number: int,
    now: datetime,
    settings: Settings,
    rand: object = None,
) -> RetryPlan | None:
    """Apply the retry policy to a stopped, failed attempt. None: nothing to decide (already
    decided, another attempt is current, or the job has ended)."""
    attempt = job.attempts.get(number)
    if (
        attempt is None
        or number != job.attempt
        or job.status.terminal
        or not attempt.awaiting_decision
    ):
        return None
    policy = (
        RetryPolicy.model_validate(job.spec.retry) if job.spec.retry else settings.default_retry
    )
    previous = [a for n, a in job.attempts.items() if n != number]
    counted = 1 + sum(1 for a in previous if not a.uncounted)
    uncounted = sum(1 for a in previous if a.uncounted)
    decision = decide(policy, attempt, counted, uncounted)
    attempt.awaiting_decision = False
    attempt.rule = decision.rule
    if job.stop_request == StopRequest.CANCEL or job.status == JobStatus.CANCELLING:
        attempt.outcome = Outcome.CANCELLED
        _set_status(job, JobStatus.CANCELLED, now, job.status_reason or "cancelled")
        return RetryPlan(Decision("FAIL", "cancelled", decision.reason))
    if decision.action == "FAIL":
        attempt.outcome = Outcome.FAIL if attempt.outcome != Outcome.LOST else Outcome.LOST
        _set_status(job, JobStatus.FAILED, now, decision.reason)
        return RetryPlan(decision)
    attempt.outcome = attempt.outcome if attempt.outcome == Outcome.LOST else Outcome.RETRY
    attempt.uncounted = decision.action == "RETRY_UNCOUNTED"
    import random

    draw = rand if callable(rand) else random.random
    wait = backoff_seconds(policy.backoff, len(job.attempts), settings.backoff_scale, draw)
    start_new_attempt(job, number + 1, now, wait)
    return RetryPlan(decision, number + 1, wait)


def start_new_attempt(job: Job, number: int, now: datetime, wait_seconds: float) -> None:
    job.attempts[number] = new_attempt(job, number, now)
    job.attempt = number
    job.stop_request = None
    job.stop_requested_at = None
    job.launch_error = None
    job.launch_failures = 0
    job.not_before = iso(now + timedelta(seconds=wait_seconds))
    _set_status(job, JobStatus.PENDING, now)


def launch_due(job: Job, now: datetime) -> bool:
    """May the current attempt be launched now?"""
    if job.status != JobStatus.PENDING or job.current.task_arn:
        return False
    due = parse_iso(job.not_before)
    return due is None or due <= now


def mark_launched(
    job: Job, number: int, task_arn: str, now: datetime, log_stream: str | None
) -> bool:
    """Record the task of an attempt. False when the job moved on meanwhile (e.g. cancelled):
    the caller must then stop the task it just launched."""
    attempt = job.attempts.get(number)
    if attempt is None:
        return False
    attempt.task_arn = attempt.task_arn or task_arn
    attempt.launched_at = attempt.launched_at or iso(now)
    attempt.log_stream = attempt.log_stream or log_stream
    if job.attempt != number or job.status.terminal:
        return False
    job.launch_error = None
    if job.status == JobStatus.PENDING:
        _set_status(job, JobStatus.STARTING, now)
        job.not_before = None
    return True


def launch_backoff(settings: Settings, failures: int, rand: object = None) -> float:
    import random

    draw = rand if callable(rand) else random.random
    ceiling = min(
        settings.launch_backoff_cap_seconds,
        settings.launch_backoff_base_seconds * 2 ** max(0, failures - 1),
    )
    # Half fixed, half jitter: launches throttled together spread out, but never instantly.
    return (ceiling / 2 + ceiling / 2 * draw()) * settings.backoff_scale


def record_launch_failure(
    job: Job,
    number: int,
    error: str,
    retryable: bool,
    now: datetime,
    settings: Settings,
    rand: object = None,
) -> float | None:
    """Returns the wait before the next launch try, or None when the job has FAILED."""
    if job.attempt != number or job.status != JobStatus.PENDING:
        return None
    job.launch_failures += 1
    job.launch_error = error
    job.updated_at = iso(now) or job.updated_at
    if not retryable or job.launch_failures >= settings.max_launch_failures:
        attempt = job.current
        attempt.outcome = Outcome.FAIL
        attempt.rule = "launch-failed" if not retryable else "launch-failures-exhausted"
        _set_status(
            job, JobStatus.FAILED, now, f"launch failed after {job.launch_failures} tries: {error}"
        )
        return None
    wait = launch_backoff(settings, job.launch_failures, rand)
    job.not_before = iso(now + timedelta(seconds=wait))
    return wait


@dataclass
class CancelResult:
    accepted: bool
    conflict: str | None = None
    stop_task: str | None = None  # ARN of a task to StopTask
    changed: bool = False
    notes: list[str] = field(default_factory=list)


def request_cancel(job: Job, reason: str | None, now: datetime) -> CancelResult:
    if job.status.terminal:
        if job.status == JobStatus.CANCELLED:
            return CancelResult(accepted=True)
        return CancelResult(accepted=False, conflict=f"job already {job.status.value}")
    text = f"cancelled: {reason}" if reason else "cancelled"
    if job.status == JobStatus.CANCELLING:
        return CancelResult(accepted=True, stop_task=job.current.task_arn)
    if job.status == JobStatus.PENDING and not job.current.task_arn:
        job.current.outcome = Outcome.CANCELLED
        job.stop_request = StopRequest.CANCEL
        _set_status(job, JobStatus.CANCELLED, now, text)
        return CancelResult(accepted=True, changed=True)
    job.stop_request = StopRequest.CANCEL
    job.stop_requested_at = iso(now)
    _set_status(job, JobStatus.CANCELLING, now, text)
    return CancelResult(accepted=True, stop_task=job.current.task_arn, changed=True)

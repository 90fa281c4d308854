"""The use cases behind every function: submit, launch, track, decide, cancel, query.

They raise domain errors (jobtracker.errors) and know nothing of HTTP. Every job write goes
through `write`: a lifecycle plan becomes one guarded Change; a refused guard hands back the job
as stored and the plan is made again from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import ValidationError

from jobtracker import lifecycle
from jobtracker.api_models import JobSubmission
from jobtracker.config import JobDefinition, Settings
from jobtracker.domain import Job, JobSpec, JobStatus, StopRequest, TaskState, iso, new_job_id
from jobtracker.ecs_event import ForeignEvent, correlate, parse_event
from jobtracker.errors import Conflict, MalformedInput, NotFound, invalid
from jobtracker.launcher import (
    OVERRIDES_LIMIT,
    build_run_task,
    log_stream_for,
    worst_case_overrides_size,
)
from jobtracker.lifecycle import Change
from jobtracker.observability import count, logger
from jobtracker.queue import MAX_DELAY_SECONDS
from jobtracker.records import item_size, job_item
from jobtracker.repository import BadToken, IdempotencyConflict, IdempotencyRecord, JobExists
from jobtracker.wiring import Deps, default_deps

T = TypeVar("T")

WRITE_TRIES = 10
# A job's record must leave room under DynamoDB's 400 KB for its current attempt and history.
MAX_JOB_BYTES = 200 * 1024


def write(
    deps: Deps,
    job_id: str,
    plan: Callable[[Job | None], tuple[Change | None, T]],
    known: Job | None = None,
    blind: bool = False,
) -> tuple[Job | None, T | None, bool]:
    """Plan a change from `known` (or a fresh read; with `blind`, from nothing at all), write
    it, and when its guard is refused plan again from the job the store hands back.

    Returns (the job after it, or as found; the plan's value; whether a change was written).
    Transitions only move forward, so a stale `known` can only make a guard refuse, never make
    a plan skip work that is due."""
    job = known
    if job is None and not blind:
        job = deps.repo.get(job_id)
        if job is None:
            return None, None, False
    for _ in range(WRITE_TRIES):
        change, value = plan(job)
        if change is None:
            return job, value, False
        written = deps.repo.apply(change)
        if written.applied or change.on_archived is not None:
            return written.job or job, value, written.applied
        if written.job is None:
            return None, value, False
        count("GuardRefused")
        job = written.job
    raise RuntimeError(f"{job_id}: gave up after {WRITE_TRIES} concurrent modifications")


# ---- submission -----------------------------------------------------------------------------


class SubmitKind(StrEnum):
    CREATED = "created"  # launched (STARTING)
    ACCEPTED = "accepted"  # stored, launch pending (capacity, throttling)
    REPLAYED = "replayed"  # same Idempotency-Key, same body


@dataclass
class Submitted:
    job: Job
    kind: SubmitKind


def body_hash(submission: JobSubmission) -> str:
    canonical = json.dumps(
        submission.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_item_key(caller: str, key: str) -> str:
    # Keys are scoped per caller: two users choosing the same key never collide.
    scope = hashlib.sha256(caller.encode()).hexdigest()[:16]
    return f"idem#{scope}#{key}"


def definition_of(settings: Settings, name: str) -> JobDefinition:
    definition = settings.job_definitions.get(name)
    if definition is None:
        known = ", ".join(sorted(settings.job_definitions)) or "none configured"
        raise invalid("definition", f"unknown job definition {name!r} (known: {known})")
    return definition


def build_job(
    submission: JobSubmission,
    settings: Settings,
    now: datetime,
    caller: str | None,
    schedule_name: str | None = None,
    scheduled_time: str | None = None,
    job_id: str | None = None,
) -> Job:
    """Validate what needs the configuration and turn a submission into a PENDING job."""
    definition = definition_of(settings, submission.definition)
    overrides = (
        submission.retry.model_dump(mode="json", exclude_defaults=True) if submission.retry else {}
    )
    spec = JobSpec(
        definition=submission.definition,
        command=submission.command,
        parameters=submission.parameters,
        environment=submission.environment,
        timeout_seconds=submission.timeout_seconds or definition.timeout_seconds,
        start_timeout_seconds=submission.start_timeout_seconds or definition.start_timeout_seconds,
        retry=overrides,
        tags=submission.tags,
    )
    job = Job(
        job_id=job_id or new_job_id(now),
        spec=spec,
        status=JobStatus.PENDING,
        created_at=iso(now) or "",
        updated_at=iso(now) or "",
        caller=caller,
        schedule_name=schedule_name,
        scheduled_time=scheduled_time,
    )
    job.attempts[1] = lifecycle.new_attempt(job.job_id, 1, now)
    size = worst_case_overrides_size(job, definition)
    if size > OVERRIDES_LIMIT:
        raise invalid(
            "parameters",
            f"command, parameters and environment need {size} characters of ECS container "
            f"overrides; ECS allows {OVERRIDES_LIMIT}. Pass large inputs by reference (S3).",
            code="overrides_too_large",
        )
    size = item_size(job_item(job))
    if size > MAX_JOB_BYTES:
        raise invalid("body", f"the job needs {size} bytes of storage; at most {MAX_JOB_BYTES}")
    return job


def submit_job(
    submission: JobSubmission,
    caller: str,
    idempotency_key: str | None = None,
    deps: Deps | None = None,
) -> Submitted:
    deps = deps or default_deps()
    now = deps.clock()
    job = build_job(submission, deps.settings, now, caller)
    if idempotency_key is not None:
        record = IdempotencyRecord(
            key=idempotency_item_key(caller, idempotency_key),
            job_id=job.job_id,
            body_hash=body_hash(submission),
            expires_at=int(
                (now + timedelta(hours=deps.settings.idempotency_ttl_hours)).timestamp()
            ),
        )
        try:
            deps.repo.claim_idempotency(record)
        except IdempotencyConflict as conflict:
            return _replay(submission, caller, idempotency_key, record, conflict, deps)
    deps.repo.create(job)
    count("JobsSubmitted")
    job = launch_attempt(job, deps)
    return Submitted(
        job, SubmitKind.CREATED if job.status != JobStatus.PENDING else SubmitKind.ACCEPTED
    )


def _replay(
    submission: JobSubmission,
    caller: str,
    key: str,
    record: IdempotencyRecord,
    conflict: IdempotencyConflict,
    deps: Deps,
) -> Submitted:
    if conflict.body_hash != record.body_hash:
        raise Conflict(
            f"Idempotency-Key {key!r} was used with a different request body "
            f"(job {conflict.job_id})",
            code="idempotency_conflict",
        )
    now = deps.clock()
    existing = deps.repo.get(conflict.job_id)
    if existing is None:
        # The first request stopped between its key and its job: finish what it began.
        job = build_job(submission, deps.settings, now, caller, job_id=conflict.job_id)
        try:
            deps.repo.create(job)
            existing = job
        except JobExists:
            existing = deps.repo.get(conflict.job_id)
        if existing is None:
            raise Conflict("key in use; retry shortly", code="idempotency_conflict") from None
    # A client retrying after a crash reattaches: launch if the first try never did.
    if lifecycle.launch_due(existing, now):
        existing = launch_attempt(existing, deps)
    return Submitted(existing, SubmitKind.REPLAYED)


# ---- launching ------------------------------------------------------------------------------


def launch_attempt(job: Job, deps: Deps) -> Job:
    """RunTask for the job's current attempt, then record the task (or the launch failure).

    Safe to repeat: the clientToken makes ECS hand back the same task for the same attempt.
    """
    number = job.attempt
    definition = deps.settings.job_definitions.get(job.definition)
    if definition is None:
        error = f"job definition {job.definition!r} is no longer configured"
        return _launch_failed(deps, job, number, error, retryable=False)
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
        return stored or job
    count("LaunchFailures")
    error = result.error or "unknown launch failure"
    logger.warning("launch failed", extra={"job_id": job.job_id, "attempt": number, "error": error})
    return _launch_failed(deps, job, number, error, result.retryable)


def _launch_failed(deps: Deps, job: Job, number: int, error: str, retryable: bool) -> Job:
    def plan(j: Job | None) -> tuple[Change | None, float | None]:
        assert j is not None
        planned = lifecycle.record_launch_failure(
            j, number, error, retryable, deps.clock(), deps.settings, deps.rand
        )
        return planned if planned is not None else (None, None)

    stored, wait, written = write(deps, job.job_id, plan, known=job)
    if stored is not None and written and wait is not None:
        schedule_launch(stored, deps)
    return stored or job


def schedule_launch(job: Job, deps: Deps) -> None:
    """Hand the current attempt to the launch queue, delayed until its not_before."""
    from jobtracker.domain import parse_iso

    if not deps.settings.launch_queue_url:
        raise RuntimeError("LAUNCH_QUEUE_URL is not configured")
    due = parse_iso(job.not_before) or deps.clock()
    delay = max(0.0, (due - deps.clock()).total_seconds())
    deps.queue.send(
        deps.settings.launch_queue_url,
        {"kind": "launch", "job_id": job.job_id, "attempt": job.attempt},
        delay_seconds=int(min(MAX_DELAY_SECONDS, round(delay + 0.49))),
    )


def handle_launch_message(job_id: str, attempt: int, deps: Deps | None = None) -> str:
    deps = deps or default_deps()
    job = deps.repo.get(job_id)
    if job is None:
        return "unknown-job"
    if job.attempt != attempt or job.status != JobStatus.PENDING or job.current.task_arn:
        return "not-pending"  # cancelled, launched already, or superseded: nothing to do
    if not lifecycle.launch_due(job, deps.clock()):
        schedule_launch(job, deps)  # waits longer than one SQS delay hop: chain another
        return "rescheduled"
    launch_attempt(job, deps)
    return "launched"


# ---- queries --------------------------------------------------------------------------------


def get_job(job_id: str, deps: Deps | None = None) -> Job:
    deps = deps or default_deps()
    job = deps.repo.get(job_id, full=True)
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    return job


def list_jobs(
    status: str | None,
    definition: str | None,
    schedule: str | None,
    limit: int,
    token: str | None,
    deps: Deps | None = None,
) -> tuple[list[Job], str | None]:
    deps = deps or default_deps()
    try:
        return deps.repo.list_jobs(status, definition, schedule, limit, token)
    except BadToken as exc:
        raise MalformedInput(
            str(exc), [{"field": "next_token", "message": str(exc)}], code="bad_token"
        ) from None


# ---- ECS task state events ------------------------------------------------------------------


class EventResult(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    MALFORMED = "malformed"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"


def _cluster_name(value: str) -> str:
    return value.rsplit("/", 1)[-1]


def handle_task_event(raw: dict[str, Any], deps: Deps | None = None) -> EventResult:
    deps = deps or default_deps()
    try:
        correlated = correlate(parse_event(raw))
    except ValidationError as exc:
        logger.warning(
            "malformed ECS event dropped",
            extra={
                "event_id": raw.get("id") if isinstance(raw, dict) else None,
                "errors": exc.errors(include_url=False)[:5],
            },
        )
        count("EventsMalformed")
        return EventResult.MALFORMED
    except ForeignEvent as exc:
        logger.info("foreign event dropped", extra={"event_id": raw.get("id"), "why": str(exc)})
        count("EventsForeign")
        return EventResult.FOREIGN
    ours = {_cluster_name(d.cluster) for d in deps.settings.job_definitions.values()}
    if _cluster_name(correlated.cluster_arn) not in ours:
        logger.info("event from another cluster dropped", extra={"event_id": correlated.event_id})
        count("EventsForeign")
        return EventResult.FOREIGN
    result = apply_state(
        correlated.job_id, correlated.attempt, correlated.state, deps, correlated.definition
    )
    count(f"Events{result.value.capitalize()}")
    return result


def apply_state(
    job_id: str,
    number: int,
    state: TaskState,
    deps: Deps,
    definition_name: str | None = None,
    known: Job | None = None,
) -> EventResult:
    """Apply one observed task state (from an event or DescribeTasks): one guarded write, with
    no read first unless the caller has the job already."""
    settings = deps.settings

    def plan(job: Job | None) -> tuple[Change | None, lifecycle.Plan]:
        name = job.definition if job is not None else definition_name
        definition = settings.job_definitions.get(name) if name else None
        planned = lifecycle.plan_task_state(job_id, number, state, deps.clock(), definition, job)
        return planned.change, planned

    job, planned, written = write(deps, job_id, plan, known=known, blind=known is None)
    if planned is None or (planned.change is not None and not written and job is None):
        logger.warning("event for an unknown job", extra={"job_id": job_id})
        return EventResult.UNKNOWN
    if planned.change is not None and not written:
        return EventResult.DUPLICATE  # a late event of an earlier attempt, already in its history
    if planned.history_full:
        logger.warning("attempt history full: state applied, not kept", extra={"job_id": job_id})
        count("HistoryFull")
    if planned.needs_decision:
        hand_to_decider(job_id, number, deps, job)
    if planned.applied == lifecycle.Applied.UNKNOWN:
        logger.warning("event for an unknown attempt", extra={"job_id": job_id, "attempt": number})
    return EventResult(planned.applied.value)


def hand_to_decider(job_id: str, attempt: int, deps: Deps, job: Job | None = None) -> None:
    """Queue a failed attempt for retry_decider, with the job as just written when known."""
    if not deps.settings.retry_queue_url:
        raise RuntimeError("RETRY_QUEUE_URL is not configured")
    message: dict[str, Any] = {"kind": "decide", "job_id": job_id, "attempt": attempt}
    if job is not None:
        message["job"] = job_item(job)
    deps.queue.send(deps.settings.retry_queue_url, message)
    count("HandedToDecider")


# ---- retry decisions ------------------------------------------------------------------------


@dataclass
class DecisionOutcome:
    action: str
    rule: str | None = None
    next_attempt: int | None = None
    wait_seconds: float | None = None
    notes: list[str] = field(default_factory=list)


def decide_attempt(
    job_id: str, attempt: int, deps: Deps | None = None, snapshot: Job | None = None
) -> DecisionOutcome:
    """Decide a failed attempt: from the snapshot its hand-off carried (no read), or a read."""
    deps = deps or default_deps()

    def plan(j: Job | None) -> tuple[Change | None, lifecycle.RetryPlan | None]:
        assert j is not None
        decided = lifecycle.decide_retry(j, attempt, deps.clock(), deps.settings, deps.rand)
        return (decided.change if decided else None), decided

    job, decided, _ = write(deps, job_id, plan, known=snapshot)
    if job is None:
        return DecisionOutcome("unknown-job")
    if decided is None:
        # Already decided: a redelivered message. Make sure the retry's launch is queued
        # (the first delivery may have crashed between the write and the send).
        if (
            job.status == JobStatus.PENDING
            and job.attempt == attempt + 1
            and not job.current.task_arn
        ):
            schedule_launch(job, deps)
            return DecisionOutcome("relaunch-queued")
        return DecisionOutcome("nothing-to-decide")
    count(f"Decision{decided.decision.action.title().replace('_', '')}")
    if decided.next_attempt is not None:
        schedule_launch(job, deps)
    return DecisionOutcome(
        decided.decision.action, decided.decision.rule, decided.next_attempt, decided.wait_seconds
    )


# ---- cancellation ---------------------------------------------------------------------------


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

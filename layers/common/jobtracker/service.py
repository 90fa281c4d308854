"""The logic behind every function: submit, launch, track, decide, cancel.

Collaborators (repository, launcher, queue, clock, settings) come in a `Deps` bundle whose
real default is built lazily and cached; unit tests pass fakes, integration tests moto.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import ValidationError

from jobtracker import lifecycle
from jobtracker.api_models import JobSubmission
from jobtracker.clock import Clock, system_clock
from jobtracker.config import JobDefinition, Settings, get_settings
from jobtracker.domain import (
    Job,
    JobSpec,
    JobStatus,
    StopRequest,
    iso,
    new_job_id,
    parse_iso,
)
from jobtracker.ecs_event import ForeignEvent, correlate, parse_event
from jobtracker.errors import ApiError, not_found, validation
from jobtracker.launcher import (
    OVERRIDES_LIMIT,
    TaskLauncher,
    build_run_task,
    log_stream_for,
    worst_case_overrides_size,
)
from jobtracker.observability import count, logger
from jobtracker.queue import MAX_DELAY_SECONDS, WorkQueue
from jobtracker.repository import (
    ApplyResult,
    IdempotencyConflict,
    IdempotencyRecord,
    JobRepository,
    StaleJob,
)

T = TypeVar("T")


@dataclass
class Deps:
    repo: JobRepository
    launcher: TaskLauncher
    queue: WorkQueue
    settings: Settings
    clock: Clock = system_clock
    rand: Callable[[], float] | None = None


@lru_cache(maxsize=1)
def default_deps() -> Deps:
    from jobtracker.launcher import default_launcher
    from jobtracker.queue import default_queue
    from jobtracker.store import default_repository

    return Deps(
        repo=default_repository(),
        launcher=default_launcher(),
        queue=default_queue(),
        settings=get_settings(),
    )


def reset_deps() -> None:
    default_deps.cache_clear()


def reset_defaults() -> None:
    """Forget every cached default (settings, clients, repository, launcher, queue, publisher),
    e.g. after the environment changed: tests, the local stack."""
    from jobtracker.aws import reset_clients
    from jobtracker.config import reset_settings
    from jobtracker.launcher import default_launcher
    from jobtracker.notify import default_publisher
    from jobtracker.queue import default_queue
    from jobtracker.store import default_repository

    reset_settings()
    reset_clients()
    reset_deps()
    for cached in (default_repository, default_launcher, default_queue, default_publisher):
        cached.cache_clear()


# ---- read-modify-write with optimistic locking ------------------------------------------------

MUTATE_TRIES = 10


def mutate(
    deps: Deps, job_id: str, change: Callable[[Job], tuple[bool, T]], known: Job | None = None
) -> tuple[Job | None, T | None]:
    """Read the job, apply `change` (returns (changed, value)), write it back guarded by its
    revision; on a lost race, read again and re-apply. Pure `change` functions make this safe.

    `known`: the caller's copy, just read or written; it is tried first, saving the read. The
    revision guard refuses it if it was stale, and since only a write proves it current, a
    change that finds nothing to do on it is checked again on a fresh read."""
    candidate = known.clone() if known is not None and known.rev else None
    for _ in range(MUTATE_TRIES):
        unproven = candidate is not None
        job = candidate if candidate is not None else deps.repo.get(job_id)
        candidate = None
        if job is None:
            return None, None
        changed, value = change(job)
        if not changed:
            if unproven:
                continue
            return job, value
        try:
            deps.repo.save(job, next_watch(job, deps.settings, deps.clock()))
            return job, value
        except StaleJob:
            count("OptimisticRetry")
            continue
    raise StaleJob(f"{job_id}: gave up after {MUTATE_TRIES} concurrent modifications")


def next_watch(job: Job, settings: Settings, now: datetime) -> str | None:
    """When the reconciler should next look at this job (None: never again)."""
    if job.status.terminal:
        return None
    quiet = timedelta(seconds=settings.quiet_after_seconds)
    candidates: list[datetime] = [now + quiet]
    attempt = job.current
    if attempt.awaiting_decision:
        candidates.append(now + timedelta(seconds=settings.decision_grace_seconds))
    if job.status == JobStatus.PENDING:
        due = parse_iso(job.not_before) or now
        # A launch message may be lost: look again a little after it should have run.
        candidates.append(max(due, now) + timedelta(seconds=settings.decision_grace_seconds))
    if job.status == JobStatus.STARTING:
        start_limit = job.spec.start_timeout_seconds or settings.default_start_timeout_seconds
        launched = parse_iso(attempt.launched_at) or now
        candidates.append(launched + timedelta(seconds=start_limit))
    if job.status in (JobStatus.STARTING, JobStatus.RUNNING) and job.spec.timeout_seconds:
        began = parse_iso(attempt.started_at) or parse_iso(attempt.launched_at) or now
        candidates.append(began + timedelta(seconds=job.spec.timeout_seconds))
    return iso(min(candidates))


# ---- submission -----------------------------------------------------------------------------


class SubmitKind(StrEnum):
    CREATED = "created"  # 201: launched (STARTING)
    ACCEPTED = "accepted"  # 202: stored, launch pending (capacity, throttling)
    REPLAYED = "replayed"  # 200: same Idempotency-Key, same body


@dataclass
class Submitted:
    job: Job
    kind: SubmitKind

    @property
    def http_status(self) -> int:
        if self.kind == SubmitKind.REPLAYED:
            return 200
        return 201 if self.job.status != JobStatus.PENDING else 202


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
        raise validation("definition", f"unknown job definition {name!r} (known: {known})")
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
    policy = settings.default_retry.with_overrides(definition.retry).with_overrides(
        submission.retry
    )
    spec = JobSpec(
        definition=submission.definition,
        command=submission.command,
        parameters=submission.parameters,
        environment=submission.environment,
        timeout_seconds=submission.timeout_seconds or definition.timeout_seconds,
        start_timeout_seconds=submission.start_timeout_seconds or definition.start_timeout_seconds,
        retry=policy.model_dump(mode="json", exclude_none=True),
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
    job.attempts[1] = lifecycle.new_attempt(job, 1, now)
    size = worst_case_overrides_size(job, definition)
    if size > OVERRIDES_LIMIT:
        raise ApiError(
            422,
            "overrides_too_large",
            f"command, parameters and environment need {size} characters of ECS container "
            f"overrides; ECS allows {OVERRIDES_LIMIT}. Pass large inputs by reference (S3).",
            [{"field": "parameters", "message": f"overrides size {size} > {OVERRIDES_LIMIT}"}],
        )
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
    idem = None
    if idempotency_key is not None:
        idem = IdempotencyRecord(
            key=idempotency_item_key(caller, idempotency_key),
            job_id=job.job_id,
            body_hash=body_hash(submission),
            expires_at=int(
                (now + timedelta(hours=deps.settings.idempotency_ttl_hours)).timestamp()
            ),
        )
    try:
        deps.repo.create(job, idem, next_watch(job, deps.settings, now))
    except IdempotencyConflict as conflict:
        assert idem is not None
        if conflict.body_hash != idem.body_hash:
            raise ApiError(
                409,
                "idempotency_conflict",
                f"Idempotency-Key {idempotency_key!r} was used with a different request body "
                f"(job {conflict.job_id})",
            ) from None
        existing = deps.repo.get(conflict.job_id)
        if existing is None:
            raise ApiError(409, "idempotency_conflict", "key in use; retry shortly") from None
        # A client retrying after a crash reattaches: launch if the first try never did.
        if lifecycle.launch_due(existing, now):
            existing = launch_attempt(existing, deps)
        return Submitted(existing, SubmitKind.REPLAYED)
    count("JobsSubmitted")
    job = launch_attempt(job, deps)
    return Submitted(
        job, SubmitKind.CREATED if job.status != JobStatus.PENDING else SubmitKind.ACCEPTED
    )


# ---- launching ------------------------------------------------------------------------------


def launch_attempt(job: Job, deps: Deps) -> Job:
    """RunTask for the job's current attempt, then record the task (or the launch failure).

    Safe to repeat: the clientToken makes ECS hand back the same task for the same attempt.
    """
    number = job.attempt
    definition = deps.settings.job_definitions.get(job.definition)
    if definition is None:
        error = f"job definition {job.definition!r} is no longer configured"
        stored, _ = _record_launch_failure(deps, job, number, error, retryable=False)
        return stored or job
    result = deps.launcher.run_task(build_run_task(job, number, definition))
    count("RunTaskCalls")
    if result.launched:
        assert result.task_arn is not None
        arn = result.task_arn
        stream = log_stream_for(definition, arn)
        stored, kept = mutate(
            deps,
            job.job_id,
            lambda j: (True, lifecycle.mark_launched(j, number, arn, deps.clock(), stream)),
            known=job,
        )
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
    stored, wait = _record_launch_failure(deps, job, number, error, result.retryable)
    if stored is not None and wait is not None:
        schedule_launch(stored, deps)
    return stored or job


def _record_launch_failure(
    deps: Deps, job: Job, number: int, error: str, retryable: bool
) -> tuple[Job | None, float | None]:
    def change(j: Job) -> tuple[bool, float | None]:
        if j.attempt != number or j.status != JobStatus.PENDING:
            return False, None
        now = deps.clock()
        return True, lifecycle.record_launch_failure(
            j, number, error, retryable, now, deps.settings, deps.rand
        )

    return mutate(deps, job.job_id, change, known=job)


def schedule_launch(job: Job, deps: Deps) -> None:
    """Hand the current attempt to the launch queue, delayed until its not_before."""
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
    job = deps.repo.get(job_id)
    if job is None:
        raise not_found(f"no job with id {job_id!r}")
    return job


def list_jobs(
    status: str | None,
    definition: str | None,
    schedule: str | None,
    limit: int,
    token: str | None,
    deps: Deps | None = None,
) -> tuple[list[Job], str | None]:
    from jobtracker.repository import BadToken

    deps = deps or default_deps()
    try:
        return deps.repo.list_jobs(status, definition, schedule, limit, token)
    except BadToken as exc:
        raise ApiError(
            400, "bad_token", str(exc), [{"field": "next_token", "message": str(exc)}]
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
    result = apply_state(correlated.job_id, correlated.attempt, correlated.state, deps)
    count(f"Events{result.value.capitalize()}")
    return result


def apply_state(job_id: str, number: int, state: Any, deps: Deps) -> EventResult:
    """Apply one observed task state (from an event or DescribeTasks), version-guarded."""
    if not state.stopped:
        target, allowed = lifecycle.fast_path_target(state)
        fast = deps.repo.apply_state(job_id, number, state, target, allowed)
        if fast.result == ApplyResult.APPLIED:
            return EventResult.APPLIED
        if fast.result == ApplyResult.DUPLICATE:
            return EventResult.DUPLICATE
        if fast.result == ApplyResult.UNKNOWN:
            logger.warning("event for an unknown job or attempt", extra={"job_id": job_id})
            return EventResult.UNKNOWN
        if fast.result == ApplyResult.STALE:
            deps.repo.record_history(job_id, number, state)
            return EventResult.STALE
        # CONFLICT: newer, but the job is somewhere the fast path does not decide: read path.
    settings = deps.settings

    def change(job: Job) -> tuple[bool, lifecycle.StateChange]:
        definition = settings.job_definitions.get(job.definition)
        result = lifecycle.apply_task_state(job, number, state, deps.clock(), definition)
        return result.applied in (lifecycle.Applied.APPLIED, lifecycle.Applied.STALE) and (
            result.applied == lifecycle.Applied.APPLIED or result.history_added
        ), result

    job, result = mutate(deps, job_id, change)
    if job is None or result is None:
        logger.warning("event for an unknown job", extra={"job_id": job_id})
        return EventResult.UNKNOWN
    if result.needs_decision:
        hand_to_decider(job_id, number, deps)
    return {
        lifecycle.Applied.APPLIED: EventResult.APPLIED,
        lifecycle.Applied.DUPLICATE: EventResult.DUPLICATE,
        lifecycle.Applied.STALE: EventResult.STALE,
        lifecycle.Applied.UNKNOWN: EventResult.UNKNOWN,
    }[result.applied]


def hand_to_decider(job_id: str, attempt: int, deps: Deps) -> None:
    if not deps.settings.retry_queue_url:
        raise RuntimeError("RETRY_QUEUE_URL is not configured")
    deps.queue.send(
        deps.settings.retry_queue_url, {"kind": "decide", "job_id": job_id, "attempt": attempt}
    )
    count("HandedToDecider")


# ---- retry decisions ------------------------------------------------------------------------


@dataclass
class DecisionOutcome:
    action: str
    rule: str | None = None
    next_attempt: int | None = None
    wait_seconds: float | None = None
    notes: list[str] = field(default_factory=list)


def decide_attempt(job_id: str, attempt: int, deps: Deps | None = None) -> DecisionOutcome:
    deps = deps or default_deps()
    job, plan = mutate(
        deps,
        job_id,
        lambda j: _decided(
            lifecycle.decide_retry(j, attempt, deps.clock(), deps.settings, deps.rand)
        ),
    )
    if job is None:
        return DecisionOutcome("unknown-job")
    if plan is None:
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
    count(f"Decision{plan.decision.action.title().replace('_', '')}")
    if plan.next_attempt is not None:
        schedule_launch(job, deps)
    return DecisionOutcome(
        plan.decision.action, plan.decision.rule, plan.next_attempt, plan.wait_seconds
    )


def _decided(plan: lifecycle.RetryPlan | None) -> tuple[bool, lifecycle.RetryPlan | None]:
    return plan is not None, plan


# ---- cancellation ---------------------------------------------------------------------------


def cancel_job(job_id: str, reason: str | None, deps: Deps | None = None) -> Job:
    deps = deps or default_deps()
    job, result = mutate(
        deps,
        job_id,
        lambda j: _cancel(lifecycle.request_cancel(j, reason, deps.clock())),
    )
    if job is None or result is None:
        raise not_found(f"no job with id {job_id!r}")
    if not result.accepted:
        raise ApiError(409, "conflict", f"cannot cancel: {result.conflict}")
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


def _cancel(result: lifecycle.CancelResult) -> tuple[bool, lifecycle.CancelResult]:
    return result.changed, result

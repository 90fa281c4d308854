"""Submitting a job: validate what needs the configuration, store it, launch it; an
Idempotency-Key makes a retried request find the job its first try made.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from jobtracker.adapters.launcher import (
    OVERRIDES_LIMIT,
    worst_case_overrides_size,
)
from jobtracker.adapters.records import job_size
from jobtracker.config import JobDefinition, Settings
from jobtracker.core import lifecycle
from jobtracker.core.checks import plain
from jobtracker.core.domain import SPEC_FIELDS, Job, JobSpec, JobStatus, iso, new_job_id
from jobtracker.core.errors import Conflict, invalid
from jobtracker.core.submission import Submission
from jobtracker.observability import count
from jobtracker.usecases import dependencies
from jobtracker.usecases.arrays import never_started, new_child, start_array
from jobtracker.usecases.launch import begin, reattach
from jobtracker.usecases.ports import (
    IdempotencyConflict,
    IdempotencyRecord,
    JobExists,
)
from jobtracker.wiring import Deps, default_deps

# A job's record must leave room under DynamoDB's 400 KB for its current attempt and history.
MAX_JOB_BYTES = 200 * 1024


class SubmitKind(StrEnum):
    CREATED = "created"  # launched (STARTING)
    ACCEPTED = "accepted"  # stored, launch pending (capacity, throttling)
    REPLAYED = "replayed"  # same Idempotency-Key, same body


@dataclass
class Submitted:
    job: Job
    kind: SubmitKind


def body_hash(submission: Submission) -> str:
    canonical = json.dumps(submission.to_dict(), sort_keys=True, separators=(",", ":"))
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
    submission: Submission,
    settings: Settings,
    now: datetime,
    caller: str | None,
    schedule_name: str | None = None,
    scheduled_time: str | None = None,
    job_id: str | None = None,
) -> Job:
    """Validate what needs the configuration and turn a submission into a PENDING job."""
    definition = definition_of(settings, submission.definition)
    if submission.command is not None and not definition.allow_command_override:
        raise invalid(
            "command",
            f"job definition {submission.definition!r} runs its image's own command; "
            "it does not allow a command override",
        )
    overrides = submission.retry.to_dict() if submission.retry else {}
    asked = {name: getattr(submission, name) for name in SPEC_FIELDS}
    # What the job runs under: the definition's defaults where the submission is silent.
    asked["timeout_seconds"] = submission.timeout_seconds or definition.timeout_seconds
    asked["start_timeout_seconds"] = (
        submission.start_timeout_seconds or definition.start_timeout_seconds
    )
    asked["retry"] = overrides
    asked["array"] = plain(submission.array, skip_defaults=True) if submission.array else None
    asked["depends_on"] = [d.to_dict() for d in submission.depends_on or ()] or None
    spec = JobSpec(**asked)
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
    # An array's parent runs nothing: its last child is what must fit (the longest index).
    runs = new_child(job, submission.array.size - 1, now) if submission.array else job
    size = worst_case_overrides_size(runs, definition)
    if size > OVERRIDES_LIMIT:
        raise invalid(
            "parameters",
            f"command, parameters and environment need {size} characters of ECS container "
            f"overrides; ECS allows {OVERRIDES_LIMIT}. Pass large inputs by reference (S3).",
            code="overrides_too_large",
        )
    size = job_size(job)
    if size > MAX_JOB_BYTES:
        raise invalid("body", f"the job needs {size} bytes of storage; at most {MAX_JOB_BYTES}")
    return job


def submit_job(
    submission: Submission,
    caller: str,
    idempotency_key: str | None = None,
    deps: Deps | None = None,
) -> Submitted:
    deps = deps or default_deps()
    now = deps.clock()
    job = build_job(submission, deps.settings, now, caller)
    if job.spec.depends_on:  # read before anything is written: a 422 writes nothing
        named = dependencies.check(job, deps)
        dependencies.initial(job, {k: found.status for k, found in named.items()}, now)
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
    job = _begin(job, deps)
    launched = job.status not in (JobStatus.PENDING, JobStatus.WAITING)
    return Submitted(job, SubmitKind.CREATED if launched else SubmitKind.ACCEPTED)


def _begin(job: Job, deps: Deps) -> Job:
    """A stored job under way: wired to what it waits on (a release begins it), or launched (an
    array's children are made and launched behind the answer)."""
    if job.is_array:
        start_array(job, deps)  # its counters, and its fan-out unless it waits
    waits = job.status == JobStatus.WAITING
    if job.spec.depends_on:
        wired = dependencies.wire(job, deps)
        if waits:
            return wired
    if job.status.terminal:  # cancelled at once: a dependency can never be met
        if job.is_array:
            never_started(job, deps)
        return job
    return job if job.is_array else begin(job, deps)


def _replay(
    submission: Submission,
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
    # A client retrying after a crash reattaches: launch if the first try never did (or wire
    # what it waits on, if it never got that far).
    if existing.status == JobStatus.WAITING:
        return Submitted(_begin(existing, deps), SubmitKind.REPLAYED)
    return Submitted(reattach(existing, deps), SubmitKind.REPLAYED)

"""The port the use cases need from storage: the repository protocol, its results and errors.

Kept apart from the store so importing the logic imports no AWS SDK (cold start).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from jobtracker.core.domain import Job

if TYPE_CHECKING:  # the read path (GET) loads no write rules
    from jobtracker.core.arrays import ArraySpec, Summary
    from jobtracker.core.domain import JobStatus
    from jobtracker.core.lifecycle import Change


class Work(StrEnum):
    """What a message on the work queues (retry, launch, deadline) asks; edge/work.py parses
    and dispatches them, the use cases send them (work_message)."""

    DECIDE = "decide"  # a failed attempt, for retry_decider
    LAUNCH = "launch"  # a PENDING attempt whose launch is due
    DEADLINE = "deadline"  # an attempt's timer: a deadline may be due
    FANOUT = "fanout"  # an array's parent: make and launch its next children, settle it
    RELEASE = "release"  # a job that ended: release (or cancel) a page of its dependents


def work_message(kind: Work, job_id: str, attempt: int) -> dict[str, Any]:
    return {"kind": kind.value, "job_id": job_id, "attempt": attempt}


@dataclass(frozen=True)
class Written:
    """What a Change did: applied (job = the job after it), or refused by its guard (job = the
    job as stored, None when there is none)."""

    applied: bool
    job: Job | None


class JobExists(Exception):
    """A job with this id was created already."""


class IdempotencyConflict(Exception):
    def __init__(self, job_id: str, body_hash: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
        self.body_hash = body_hash


class BadToken(ValueError):
    pass


class ItemTooLarge(ValueError):
    """A job whose record would not fit DynamoDB's item limit (400 KB)."""


@dataclass
class IdempotencyRecord:
    """A claimed Idempotency-Key: the job it made and the body it was made from."""

    key: str
    job_id: str
    body_hash: str
    expires_at: int


class JobRepository(Protocol):
    def create(self, job: Job) -> None: ...
    def claim_idempotency(self, record: IdempotencyRecord) -> None: ...
    def get(self, job_id: str, full: bool = False) -> Job | None: ...
    def many(self, job_ids: Iterable[str], consistent: bool = False) -> dict[str, Job]:
        """The jobs of these ids that exist (one BatchGetItem a hundred)."""
        ...

    def apply(self, change: Change) -> Written: ...
    def list_jobs(
        self,
        status: str | None,
        definition: str | None,
        schedule: str | None,
        limit: int,
        token: str | None,
        children: bool = False,
    ) -> tuple[list[Job], str | None]: ...
    def active_jobs(self) -> Iterator[Job]: ...
    def waiting_jobs(self) -> Iterator[Job]: ...
    def children(self, parent_id: str, indexes: range, consistent: bool = False) -> list[Job]:
        """An array's children at `indexes` that exist, in index order."""
        ...

    def add_edges(self, dependent_id: str, dependency_ids: Iterable[str], at: str) -> None:
        """`dependent_id` waits on each of `dependency_ids` (found by `dependents`)."""
        ...

    def dependents(
        self, job_id: str, limit: int, token: str | None = None
    ) -> tuple[list[str], str | None]:
        """Ids of the jobs an edge says wait on `job_id`, a page at a time."""
        ...


@dataclass(frozen=True)
class LogEvent:
    """One line of an attempt's log."""

    at: datetime
    message: str


@dataclass(frozen=True)
class LogPage:
    """A page of log lines and the token of the next."""

    events: list[LogEvent]
    next_token: str | None  # where the next read starts; the same token again when no more yet
    found: bool = True  # False: the stream does not exist (yet: a task writes it once it runs)


class LogReader(Protocol):
    """An attempt's log stream (CloudWatch Logs on AWS and on the local stack)."""

    def read(self, group: str, stream: str, limit: int, token: str | None) -> LogPage: ...


class LaunchGovernor(Protocol):
    """The account's launch rate, shared by every launcher (API, schedules, retries, the
    reconciler): slots now, or booked up to a horizon ahead (adapters/governor.py)."""

    def acquire_many(self, now: datetime, wanted: int) -> tuple[int, float]:
        """Up to `wanted` slots now: how many, and the wait for the next when fewer."""
        ...

    def reserve(self, now: datetime, wanted: int, horizon: float) -> tuple[list[float], float]:
        """Up to `wanted` slots within `horizon` seconds: each one's seconds from now (0.0:
        now), and the wait until the next comes within the horizon when fewer."""
        ...

    def booked_until(self) -> float | None:
        """No slot is booked later than this (epoch seconds); None: nothing booked."""
        ...


class Unlimited:
    """No governor: every launch may go (unit tests; a deployment with its own limiter)."""

    def acquire_many(self, now: datetime, wanted: int) -> tuple[int, float]:
        return wanted, 0.0

    def reserve(self, now: datetime, wanted: int, horizon: float) -> tuple[list[float], float]:
        return [0.0] * wanted, 0.0

    def booked_until(self) -> float | None:
        return None


@dataclass(frozen=True)
class ScheduleRecord:
    """One of the stack's schedules, as EventBridge Scheduler's GetSchedule describes it."""

    name: str
    group: str
    expression: str
    timezone: str | None
    state: str  # ENABLED | DISABLED
    created_at: datetime | None  # where a rate() counts from
    description: str | None
    input: str | None  # the tick's JSON, with Scheduler's <aws.scheduler.*> placeholders
    arn: str = ""
    role_arn: str | None = None  # the role Scheduler invokes its target as


class ScheduleSource(Protocol):
    """The stack's job schedules (EventBridge Scheduler, on AWS and on the local stack)."""

    def schedules(self) -> list[ScheduleRecord]: ...

    def set_state(self, record: ScheduleRecord, state: str) -> ScheduleRecord:
        """The schedule ENABLED or DISABLED, the rest of it as it is; what it is now."""
        ...


class ArrayCounterStore(Protocol):
    """An array's counters (core.arrays.Summary) beside its parent job (adapters/arrays.py)."""

    def create(self, parent_id: str, spec: ArraySpec) -> None: ...

    def read(self, parent_id: str) -> tuple[ArraySpec, Summary] | None: ...

    def claim(self, parent_id: str, seen: int, more: int, cursor: int | None = None) -> bool:
        """The next `more` indexes from `seen`, unless another claim moved `launched` first
        (in a retry round: `more` children, the cursor moved to `cursor`)."""
        ...

    def reopen(self, parent_id: str, seen: Summary, redo: frozenset[JobStatus]) -> bool:
        """A retry round of the children in `redo` statuses, unless the counters moved."""
        ...

    def finish(self, parent_id: str, status: JobStatus) -> tuple[ArraySpec, Summary]:
        """One more child ended `status`; the array and its counters after it."""
        ...

    def close(self, parent_id: str, seen: int, size: int) -> bool:
        """No more children: indexes from `seen` taken and counted CANCELLED, unless a claim
        moved `launched` first or the array is closed already."""
        ...

    def reset(self, parent_id: str, summary: Summary) -> None:
        """The finished counts as the children say."""
        ...

    def add_dependent(self, parent_id: str, dependent_id: str) -> None:
        """An array whose children wait on this one's, index by index."""
        ...


class MemoryArrayCounters:
    """Array counters in memory, with the stored ones' semantics (unit tests)."""

    def __init__(self) -> None:
        self.arrays: dict[str, tuple[ArraySpec, Summary]] = {}

    def create(self, parent_id: str, spec: ArraySpec) -> None:
        from jobtracker.core.arrays import ArraySpec, Summary

        if parent_id in self.arrays:
            raise ArrayExists(parent_id)
        window = spec.window if spec.window < spec.size else None
        kept = ArraySpec(size=spec.size, max_running=window, tolerated_failures=spec.tolerated)
        self.arrays[parent_id] = (kept, Summary())

    def read(self, parent_id: str) -> tuple[ArraySpec, Summary] | None:
        found = self.arrays.get(parent_id)
        if found is None:
            return None
        spec, summary = found
        return spec, _copy(summary)

    def claim(self, parent_id: str, seen: int, more: int, cursor: int | None = None) -> bool:
        _, summary = self.arrays[parent_id]
        if summary.launched != seen:
            return False
        summary.launched += more
        if cursor is not None:
            summary.cursor = cursor
        return True

    def reopen(self, parent_id: str, seen: Summary, redo: frozenset[JobStatus]) -> bool:
        _, summary = self.arrays[parent_id]
        if (summary.launched, summary.round) != (seen.launched, seen.round):
            return False
        summary.launched -= sum(summary.count(s) for s in redo)
        summary.finished = {s: n for s, n in summary.finished.items() if s not in redo}
        summary.closed, summary.cursor, summary.round, summary.redo = False, 0, seen.round + 1, redo
        return True

    def close(self, parent_id: str, seen: int, size: int) -> bool:
        from jobtracker.core.domain import JobStatus

        _, summary = self.arrays[parent_id]
        if summary.launched != seen or summary.closed:
            return False
        cancelled = JobStatus.CANCELLED
        summary.finished[cancelled] = summary.finished.get(cancelled, 0) + size - seen
        summary.launched, summary.closed = size, True
        return True

    def finish(self, parent_id: str, status: JobStatus) -> tuple[ArraySpec, Summary]:
        spec, summary = self.arrays[parent_id]
        summary.finished[status] = summary.finished.get(status, 0) + 1
        return spec, _copy(summary)

    def reset(self, parent_id: str, summary: Summary) -> None:
        _, kept = self.arrays[parent_id]
        kept.finished = {s: n for s, n in summary.finished.items() if n}

    def add_dependent(self, parent_id: str, dependent_id: str) -> None:
        _, kept = self.arrays[parent_id]
        kept.per_index_dependents = kept.per_index_dependents | {dependent_id}


def _copy(summary: Summary) -> Summary:

    return replace(summary, finished=dict(summary.finished))


class ArrayExists(Exception):
    """The array's counters were made already (a replayed submission)."""


class RunningLimits(Protocol):
    """Slots of the definitions with a running limit (`max_running`): a launched attempt holds
    one until its task stops. Acquiring a slot already held and releasing one not held are
    no-ops, so a retried handler is harmless."""

    def acquire(self, definition: str, holder: str, limit: int) -> bool: ...

    def release(self, definition: str, *holders: str) -> None: ...

    def holders(self, definition: str) -> set[str]: ...


class MemoryRunningLimits:
    """Running limits in memory, with the semantics of the stored ones (unit tests)."""

    def __init__(self) -> None:
        self.held: dict[str, set[str]] = {}

    def acquire(self, definition: str, holder: str, limit: int) -> bool:
        held = self.held.setdefault(definition, set())
        if holder not in held and len(held) >= limit:
            return False
        held.add(holder)
        return True

    def release(self, definition: str, *holders: str) -> None:
        self.held.get(definition, set()).difference_update(holders)

    def holders(self, definition: str) -> set[str]:
        return set(self.held.get(definition, set()))

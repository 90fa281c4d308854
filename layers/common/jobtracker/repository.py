"""What the logic needs from storage: the repository protocol, its results and errors.

Kept apart from store.py so importing the logic does not import pynamodb (cold start).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from jobtracker.domain import Job, JobStatus, TaskState

# ---- results -------------------------------------------------------------------------------


class ApplyResult(StrEnum):
    APPLIED = "applied"  # state and (where asked) job status written
    DUPLICATE = "duplicate"  # same detail.version already applied
    STALE = "stale"  # an older version than applied: history only
    CONFLICT = "conflict"  # newer, but the job is not where the fast path expected
    UNKNOWN = "unknown"  # no such job or attempt


@dataclass
class FastApply:
    result: ApplyResult
    job: Job | None = None  # the job as stored when the write was refused


class StaleJob(Exception):
    """The job changed since it was read (optimistic lock lost)."""


class IdempotencyConflict(Exception):
    def __init__(self, job_id: str, body_hash: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
        self.body_hash = body_hash


class BadToken(ValueError):
    pass


@dataclass
class IdempotencyRecord:
    key: str
    job_id: str
    body_hash: str
    expires_at: int


class JobRepository(Protocol):
    def create(
        self, job: Job, idem: IdempotencyRecord | None = None, watch_at: str | None = None
    ) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def get_idempotency(self, key: str) -> IdempotencyRecord | None: ...
    def save(self, job: Job, watch_at: str | None) -> Job: ...
    def apply_state(
        self,
        job_id: str,
        attempt: int,
        state: TaskState,
        job_status: JobStatus | None,
        allowed_from: frozenset[JobStatus],
    ) -> FastApply: ...
    def record_history(self, job_id: str, attempt: int, state: TaskState) -> bool: ...
    def list_jobs(
        self,
        status: str | None,
        definition: str | None,
        schedule: str | None,
        limit: int,
        token: str | None,
    ) -> tuple[list[Job], str | None]: ...
    def due_for_watch(self, now: str, limit: int) -> list[str]: ...

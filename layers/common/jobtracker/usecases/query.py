"""Reading jobs: one job with all its attempts, a page of a list, or an attempt's logs."""

from __future__ import annotations

from dataclasses import dataclass

from jobtracker.core.domain import Attempt, Job
from jobtracker.core.errors import MalformedInput, NotFound
from jobtracker.usecases.ports import BadToken, LogPage
from jobtracker.wiring import Deps, default_deps


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
        raise _bad_token(exc) from None


def _bad_token(exc: BadToken) -> MalformedInput:
    return MalformedInput(
        str(exc), [{"field": "next_token", "message": str(exc)}], code="bad_token"
    )


@dataclass(frozen=True)
class AttemptLogs:
    job: Job
    attempt: Attempt
    page: LogPage

    @property
    def finished(self) -> bool:
        """No more lines will come: the attempt's task stopped (or never started)."""
        return (
            self.attempt.stopped_at is not None
            or self.attempt.outcome is not None
            or (self.attempt.number != self.job.attempt or self.job.status.terminal)
        )


def job_logs(
    job_id: str,
    attempt: int | None,
    limit: int,
    token: str | None,
    deps: Deps | None = None,
) -> AttemptLogs:
    """A page of one attempt's log lines, oldest first (default: the newest attempt); follow a
    running attempt by reading again with the page's next_token."""
    deps = deps or default_deps()
    job = get_job(job_id, deps)
    number = job.attempt if attempt is None else attempt
    chosen = job.attempts.get(number)
    if chosen is None:
        raise NotFound(f"job {job_id!r} has no attempt {number} (it has 1-{job.attempt})")
    where = chosen.log_location
    if where is None:  # not launched yet, or its definition logs nowhere
        return AttemptLogs(job, chosen, LogPage([], None, found=False))
    try:
        page = deps.logs.read(where[0], where[1], limit, token)
    except BadToken as exc:
        raise _bad_token(exc) from None
    return AttemptLogs(job, chosen, page)

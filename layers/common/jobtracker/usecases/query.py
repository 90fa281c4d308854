"""Reading jobs: one job with all its attempts, or a page of a list."""

from __future__ import annotations

from jobtracker.core.domain import Job
from jobtracker.core.errors import MalformedInput, NotFound
from jobtracker.usecases.ports import (
    BadToken,
)
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
        raise MalformedInput(
            str(exc), [{"field": "next_token", "message": str(exc)}], code="bad_token"
        ) from None

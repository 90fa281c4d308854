"""The one way a use case writes a job: plan a lifecycle Change, write it guarded, and
when its guard is refused plan again from the job the store hands back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from jobtracker.core.domain import Job
from jobtracker.core.lifecycle import Change
from jobtracker.observability import count
from jobtracker.wiring import Deps

T = TypeVar("T")

WRITE_TRIES = 10


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

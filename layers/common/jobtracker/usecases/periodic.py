"""Periodic jobs: a schedule's tick creates a job through the same creation logic as POST /jobs.

- One job per tick, however often the tick is delivered: the job id is derived from the
  schedule's name and scheduled time, and created with a does-not-exist condition.
- Overlap policy when the previous run is still active: Allow, Forbid (skip this tick) or
  Replace (cancel the previous run(s), then start this one).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from jobtracker.core.domain import Job, iso, parse_iso
from jobtracker.core.errors import Conflict, NotFound
from jobtracker.core.submission import ScheduledRun
from jobtracker.observability import count, logger
from jobtracker.usecases.cancel import cancel_job
from jobtracker.usecases.launch import begin, reattach
from jobtracker.usecases.ports import JobExists
from jobtracker.usecases.submit import build_job
from jobtracker.wiring import Deps, default_deps

MAX_ACTIVE_LOOKUP = 25


class Outcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"


@dataclass
class TickResult:
    outcome: Outcome
    job_id: str
    replaced: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)  # SKIPPED: the runs still active


def scheduled_job_id(schedule: str, scheduled_time: str) -> str:
    """Deterministic per (schedule, tick): a redelivered tick names the same job."""
    when = parse_iso(scheduled_time)
    key = f"{schedule}|{iso(when) if when else scheduled_time}".encode()
    digest = base64.b32encode(hashlib.sha256(key).digest()).decode().lower().rstrip("=")
    return f"job-s{digest[:25]}"


def _active_runs(schedule: str, exclude: str, deps: Deps) -> list[Job]:
    jobs, _ = deps.repo.list_jobs(None, None, schedule, MAX_ACTIVE_LOOKUP, None)
    return [j for j in jobs if not j.status.terminal and j.job_id != exclude]


def run_tick(run: ScheduledRun, deps: Deps | None = None, caller: str | None = None) -> TickResult:
    """`caller`: who fired the tick by hand (run now); a tick of the schedule's own is by it."""
    deps = deps or default_deps()
    job_id = scheduled_job_id(run.schedule, run.scheduled_time)
    existing = deps.repo.get(job_id)
    if existing is not None:
        count("ScheduleTicksDuplicate")
        # A tick redelivered after a crash between create and launch finishes the launch.
        reattach(existing, deps)
        return TickResult(Outcome.DUPLICATE, job_id)
    # Checked before anything is done: a tick whose job is refused cancels no run.
    job = build_job(
        run.job,
        deps.settings,
        deps.clock(),
        caller=caller or f"schedule:{run.schedule}",
        schedule_name=run.schedule,
        scheduled_time=run.scheduled_time,
        job_id=job_id,
    )
    active = _active_runs(run.schedule, job_id, deps)
    replaced: list[str] = []
    if active and run.overlap == "Forbid":
        logger.info(
            "schedule tick skipped: previous run still active",
            extra={"schedule": run.schedule, "active": [j.job_id for j in active]},
        )
        count("ScheduleTicksSkipped")
        return TickResult(Outcome.SKIPPED, job_id, active=[j.job_id for j in active])
    if active and run.overlap == "Replace":
        for previous in active:
            try:
                cancel_job(
                    previous.job_id,
                    f"replaced by the {run.scheduled_time} run of {run.schedule}",
                    deps,
                )
            except (Conflict, NotFound):
                continue  # finished meanwhile: nothing to replace
            replaced.append(previous.job_id)
    try:
        deps.repo.create(job)
    except JobExists:
        count("ScheduleTicksDuplicate")  # the same tick, delivered twice at once
        return TickResult(Outcome.DUPLICATE, job_id)
    count("ScheduleTicksCreated")
    begin(job, deps)  # launched, or an array's fan-out queued (a nightly fan-out)
    return TickResult(Outcome.CREATED, job_id, replaced)

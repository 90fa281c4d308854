"""ECS task states (events and DescribeTasks) applied to jobs: one guarded write, no read."""

from __future__ import annotations

from enum import StrEnum

from jobtracker.adapters.records import job_item
from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, TaskState
from jobtracker.core.lifecycle import Change
from jobtracker.observability import count, logger
from jobtracker.usecases.ports import Work, work_message
from jobtracker.usecases.running_limit import give_back_slot
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps


class EventResult(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    MALFORMED = "malformed"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"


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
    if state.stopped:
        name = job.definition if job is not None else definition_name
        give_back_slot(deps, name, job_id, number)
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
    message = work_message(Work.DECIDE, job_id, attempt)
    if job is not None:
        message["job"] = job_item(job)
    deps.queue.send(deps.settings.retry_queue_url, message)
    count("HandedToDecider")

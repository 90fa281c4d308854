"""Retry decisions for failed attempts (retry_decider)."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, JobStatus
from jobtracker.core.lifecycle import Change
from jobtracker.observability import count
from jobtracker.usecases.launch import schedule_launch
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps


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

"""What the console's overview draws, computed from recent jobs: jobs by status over time,
success rate and p50/p95 duration per definition, and the jobs waiting for launch. Pure rules
(no I/O): the use case reads the jobs, this decides what they add up to."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobtracker.core.domain import Job, JobStatus, parse_iso

BUCKETS = 24  # bars in the jobs-over-time picture, whatever the window
# A success rate counts the jobs that ran to a verdict: a cancelled job is nobody's failure.
VERDICTS = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT})


@dataclass(frozen=True)
class Bucket:
    start: datetime
    counts: dict[str, int]  # jobs created in [start, start + bucket) by their status now


@dataclass(frozen=True)
class DefinitionStats:
    definition: str
    jobs: int
    succeeded: int
    verdicts: int  # succeeded + failed + timed out
    success_rate: float | None  # None: no job reached a verdict yet
    p50_seconds: float | None  # submitted -> finished, of the finished jobs
    p95_seconds: float | None


@dataclass(frozen=True)
class Waiting:
    job: Job
    since: datetime  # when it was submitted
    reason: str  # why it has not launched yet


@dataclass(frozen=True)
class Overview:
    since: datetime
    until: datetime
    bucket_seconds: int
    buckets: list[Bucket]
    totals: dict[str, int]
    definitions: list[DefinitionStats]
    waiting: list[Waiting]
    truncated: bool  # more jobs were created in the window than were read
    # unfinished jobs by status, whatever their age
    now: dict[str, int] = field(default_factory=dict)
    now_capped: bool = False  # more unfinished jobs than were counted


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def duration(job: Job) -> float | None:
    start, end = parse_iso(job.created_at), parse_iso(job.finished_at)
    return None if start is None or end is None else max(0.0, (end - start).total_seconds())


def waiting_reason(job: Job, now: datetime) -> str:
    due = parse_iso(job.not_before)
    if job.launch_error:
        return job.launch_error  # throttling, no capacity, RESOURCE:*: it waits for a slot
    if due is not None and due > now:
        return "waiting for its retry's backoff"
    return "accepted, about to launch"


def summarize(
    jobs: list[Job],
    pending: list[Job],
    since: datetime,
    until: datetime,
    truncated: bool,
    active: list[Job] | None = None,
    active_capped: bool = False,
) -> Overview:
    step = max(1, math.ceil((until - since).total_seconds() / BUCKETS))
    counts: list[Counter[str]] = [Counter() for _ in range(BUCKETS)]
    by_definition: dict[str, list[Job]] = {}
    for job in jobs:
        created = parse_iso(job.created_at)
        if created is None or not since <= created <= until:
            continue
        counts[min(BUCKETS - 1, int((created - since).total_seconds() // step))][
            job.status.value
        ] += 1
        by_definition.setdefault(job.definition, []).append(job)
    totals: Counter[str] = Counter()
    for c in counts:
        totals.update(c)
    return Overview(
        since=since,
        until=until,
        bucket_seconds=step,
        buckets=[
            Bucket(since + timedelta(seconds=i * step), dict(c)) for i, c in enumerate(counts)
        ],
        totals=dict(totals),
        definitions=[_definition(name, group) for name, group in sorted(by_definition.items())],
        waiting=[
            Waiting(j, parse_iso(j.created_at) or until, waiting_reason(j, until))
            for j in sorted(pending, key=lambda j: j.created_at)
            if j.status == JobStatus.PENDING and not j.current.task_arn
        ],
        truncated=truncated,
        now=dict(Counter(j.status.value for j in active or [])),
        now_capped=active_capped,
    )


def _definition(name: str, jobs: list[Job]) -> DefinitionStats:
    decided = [j for j in jobs if j.status in VERDICTS]
    succeeded = sum(1 for j in decided if j.status == JobStatus.SUCCEEDED)
    # A cancel's time says when someone gave up, not how long the work takes.
    durations = [d for j in decided if (d := duration(j)) is not None]
    return DefinitionStats(
        definition=name,
        jobs=len(jobs),
        succeeded=succeeded,
        verdicts=len(decided),
        success_rate=succeeded / len(decided) if decided else None,
        p50_seconds=percentile(durations, 50),
        p95_seconds=percentile(durations, 95),
    )

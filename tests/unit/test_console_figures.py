"""Unit: what the console's pages show — the overview's figures (core.overview) and the
schedules' state (usecases.schedules) — computed from fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobtracker.core.domain import Attempt, Job, JobSpec, JobStatus, iso
from jobtracker.core.overview import percentile, summarize
from jobtracker.edge.api_models import scheduled_run
from jobtracker.usecases.ports import ScheduleRecord
from jobtracker.usecases.schedules import list_schedules
from tests.fakes import FakeClock, FakeSchedules, fake_deps, schedule_record

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def job(n: int, status: JobStatus, age_min: float, ran_s: float | None = None, **kw: str) -> Job:
    created = NOW - timedelta(minutes=age_min)
    finished = iso(created + timedelta(seconds=ran_s)) if ran_s is not None else None
    task_arn = kw.pop("task_arn", None)
    j = Job(
        job_id=f"job-{n}",
        spec=JobSpec(definition=kw.pop("definition", "demo")),
        status=status,
        created_at=iso(created) or "",
        updated_at=iso(created) or "",
        finished_at=finished,
        **kw,  # type: ignore[arg-type]
    )
    j.attempts[1] = Attempt(number=1, client_token=f"job-{n}-a1", task_arn=task_arn)
    return j


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([], 50, None), ([3.0], 95, 3.0), ([1, 2, 3, 4], 50, 2), ([*range(1, 101)], 95, 95)],
)
def test_percentiles_are_nearest_rank(values: list[float], p: float, expected: float) -> None:
    assert percentile([float(v) for v in values], p) == expected


def test_the_overview_buckets_jobs_by_creation_and_rates_only_verdicts() -> None:
    jobs = [
        job(1, JobStatus.SUCCEEDED, 10, 30),
        job(2, JobStatus.SUCCEEDED, 70, 90),
        job(3, JobStatus.FAILED, 70, 10),
        job(4, JobStatus.CANCELLED, 5, 1),  # no verdict: not in the success rate nor durations
        job(5, JobStatus.SUCCEEDED, 300, 5, definition="nightly"),  # before the window
    ]
    o = summarize(jobs, [], NOW - timedelta(hours=2), NOW, truncated=False)
    assert o.bucket_seconds == 300 and len(o.buckets) == 24
    assert o.totals == {"SUCCEEDED": 2, "FAILED": 1, "CANCELLED": 1}
    # five-minute bars: 5, 10 and 70 minutes ago are the last, the one before, and the 11th
    assert o.buckets[-1].counts == {"CANCELLED": 1} and o.buckets[-2].counts == {"SUCCEEDED": 1}
    assert o.buckets[10].counts == {"SUCCEEDED": 1, "FAILED": 1}
    (demo,) = o.definitions
    assert (demo.jobs, demo.succeeded, demo.verdicts) == (4, 2, 3)
    assert demo.success_rate == pytest.approx(2 / 3)
    assert (demo.p50_seconds, demo.p95_seconds) == (30.0, 90.0), "of 10, 30 and 90 s"


def test_the_queue_lists_unlaunched_pending_jobs_oldest_first_with_why() -> None:
    pending = [
        job(1, JobStatus.PENDING, 1, launch_error="RESOURCE:MEMORY"),
        job(2, JobStatus.PENDING, 3, not_before=iso(NOW + timedelta(seconds=30)) or ""),
        job(3, JobStatus.PENDING, 2, task_arn="arn:task"),  # launched: not waiting
    ]
    o = summarize([], pending, NOW - timedelta(hours=1), NOW, truncated=False)
    assert [(w.job.job_id, w.reason) for w in o.waiting] == [
        ("job-2", "waiting for its retry's backoff"),
        ("job-1", "RESOURCE:MEMORY"),
    ]


def test_the_overview_counts_unfinished_jobs_by_status_whatever_their_age() -> None:
    # GIVEN unfinished jobs, one of them created long before the window
    active = [
        job(1, JobStatus.RUNNING, 1),
        job(2, JobStatus.RUNNING, 60 * 24 * 3),  # three days old: outside any window
        job(3, JobStatus.PENDING, 2),
        job(4, JobStatus.STARTING, 1),
    ]
    # WHEN the overview of the last hour is made
    o = summarize([], [], NOW - timedelta(hours=1), NOW, False, active, active_capped=False)
    # THEN "now" counts each of them by status
    assert o.now == {"RUNNING": 2, "PENDING": 1, "STARTING": 1}, o.now
    assert o.now_capped is False


def record(name: str, expression: str, state: str = "ENABLED", **tick: object) -> ScheduleRecord:
    return schedule_record(name, expression, state, created_at=NOW - timedelta(seconds=90), **tick)


def test_each_schedules_next_tick_follows_its_expression_and_state() -> None:
    deps = fake_deps()
    deps.clock = FakeClock(NOW)
    deps.schedules = FakeSchedules(
        record("hourly", "cron(0 * * * ? *)", overlap="Replace"),
        record("often", "rate(5 minutes)"),  # counted from its creation, 90 s ago
        record("paused", "rate(1 hour)", state="DISABLED"),
    )
    found = {s.name: s for s in list_schedules(runs=3, read_tick=scheduled_run, deps=deps)}
    assert found["hourly"].next_tick == NOW + timedelta(hours=1)
    assert found["hourly"].tick is not None and found["hourly"].tick.overlap == "Replace"
    assert found["often"].next_tick == NOW + timedelta(seconds=210)
    assert found["paused"].next_tick is None and found["paused"].problem is None

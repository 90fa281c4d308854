"""Small fakes for unit tests of the logic (integration tests use the real ones on moto)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from jobtracker.adapters.launcher import Describe, LaunchRequest, LaunchResult
from jobtracker.adapters.queue import Received
from jobtracker.config import Settings, load_settings
from jobtracker.core.domain import Job, JobStatus, child_id
from jobtracker.core.lifecycle import Change
from jobtracker.usecases.ports import (
    IdempotencyConflict,
    IdempotencyRecord,
    JobExists,
    ScheduleRecord,
    Written,
)
from jobtracker.wiring import Deps

DEFINITIONS = (
    '{"demo": {"task_definition": "arn:aws:ecs:us-east-1:1:task-definition/w:1", '
    '"container": "worker", "cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/jobtracker", '
    '"subnets": "subnet-1,subnet-2", "security_groups": "sg-1"}}'
)


def settings(**env: str) -> Settings:
    base = {
        "TABLE_NAME": "t",
        "JOB_DEFINITIONS": DEFINITIONS,
        "LAUNCH_QUEUE_URL": "https://sqs/launch",
        "RETRY_QUEUE_URL": "https://sqs/retry",
        "DEADLINE_QUEUE_URL": "https://sqs/deadline",
    }
    base.update(env)
    return load_settings(base)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeGovernor:
    """The launch governor's GCRA in memory: `burst` slots at once, then one every `interval`
    seconds; a reservation books slots up to its horizon ahead. Counts its calls (`asked`)."""

    def __init__(self, burst: int, interval: float) -> None:
        self.burst, self.interval = burst, interval
        self.tat: float | None = None  # the theoretical arrival time of the next slot
        self.asked = 0

    def reserve(self, now: datetime, wanted: int, horizon: float) -> tuple[list[float], float]:
        self.asked += 1
        at = now.timestamp()
        ahead = (self.burst - 1) * self.interval
        tat = max(self.tat or at, at)
        slots = []
        while len(slots) < wanted and tat - ahead <= at + horizon + 1e-9:
            slots.append(max(0.0, round(tat - ahead - at, 3)))
            tat += self.interval
        self.tat = tat
        wait = 0.0 if len(slots) == wanted else max(0.0, tat - ahead - at - horizon)
        return slots, wait

    def acquire_many(self, now: datetime, wanted: int) -> tuple[int, float]:
        slots, wait = self.reserve(now, wanted, 0.0)
        return len(slots), wait

    def booked_until(self) -> float | None:
        return self.tat


@dataclass
class FakeRepo:
    """Keeps jobs as deep copies and applies Changes as DynamoDB would: the change's own guard
    decides (Guard.holds), a refusal hands back the job as stored, nothing else is checked."""

    jobs: dict[str, Job] = field(default_factory=dict)
    idem: dict[str, IdempotencyRecord] = field(default_factory=dict)
    writes: int = 0
    refused: int = 0
    gets: int = 0
    edges: dict[str, list[str]] = field(default_factory=dict)  # dependency -> dependents
    # (old, new) of every write, as the table's stream would carry them (tests drain it)
    stream: list[tuple[Job | None, Job]] = field(default_factory=list)

    def create(self, job: Job) -> None:
        if job.job_id in self.jobs:
            raise JobExists(job.job_id)
        self.jobs[job.job_id] = job.clone()
        self.stream.append((None, job.clone()))

    def claim_idempotency(self, record: IdempotencyRecord) -> None:
        existing = self.idem.get(record.key)
        if existing is not None:
            raise IdempotencyConflict(existing.job_id, existing.body_hash)
        self.idem[record.key] = record

    def get(self, job_id: str, full: bool = False) -> Job | None:
        self.gets += 1
        job = self.jobs.get(job_id)
        return job.clone() if job else None

    def many(self, job_ids: Iterable[str], consistent: bool = False) -> dict[str, Job]:
        return {i: self.jobs[i].clone() for i in job_ids if i in self.jobs}

    def apply(self, change: Change) -> Written:
        stored = self.jobs.get(change.job_id)
        if stored is None:
            return Written(False, None)
        if change.on_archived is not None:
            old = stored.attempts.get(change.on_archived)
            if old is None or change.history is None or change.history[0] in old.history:
                return Written(False, None)
        elif not change.guard.holds(stored):
            self.refused += 1
            return Written(False, stored.clone())
        old = stored.clone()
        change.apply_to(stored)
        self.writes += 1
        self.stream.append((old, stored.clone()))
        return Written(True, stored.clone())

    def list_jobs(self, *args: Any) -> tuple[list[Job], str | None]:
        return [j.clone() for j in self.jobs.values()], None

    def active_jobs(self) -> Iterator[Job]:
        for job in list(self.jobs.values()):
            if not job.status.terminal and job.status != JobStatus.WAITING:
                yield job.clone()

    def waiting_jobs(self) -> Iterator[Job]:
        for job in list(self.jobs.values()):
            if job.status == JobStatus.WAITING:
                yield job.clone()

    def add_edges(self, dependent_id: str, dependency_ids: Iterable[str], at: str) -> None:
        for dependency_id in dependency_ids:
            found = self.edges.setdefault(dependency_id, [])
            if dependent_id not in found:
                found.append(dependent_id)

    def dependents(
        self, job_id: str, limit: int, token: str | None = None
    ) -> tuple[list[str], str | None]:
        found = self.edges.get(job_id, [])
        start = int(token or 0)
        rest = start + limit
        return found[start:rest], (str(rest) if rest < len(found) else None)

    def children(self, parent_id: str, indexes: range, consistent: bool = False) -> list[Job]:
        found = (self.jobs.get(child_id(parent_id, i)) for i in indexes)
        return [job.clone() for job in found if job is not None]


@dataclass
class FakeLauncher:
    fail_with: LaunchResult | None = None
    requests: list[LaunchRequest] = field(default_factory=list)
    stopped: list[tuple[str, str]] = field(default_factory=list)
    tasks_by_token: dict[str, str] = field(default_factory=dict)

    def run_task(self, request: LaunchRequest) -> LaunchResult:
        self.requests.append(request)
        if self.fail_with is not None:
            return self.fail_with
        arn = self.tasks_by_token.setdefault(
            request.client_token,
            f"arn:aws:ecs:us-east-1:1:task/jobtracker/{len(self.tasks_by_token):032x}",
        )
        return LaunchResult(task_arn=arn)

    def stop_task(self, cluster: str, task_arn: str, reason: str) -> None:
        self.stopped.append((task_arn, reason))

    def describe_tasks(self, cluster: str, task_arns: list[str]) -> Describe:
        return Describe(missing=list(task_arns))


@dataclass
class FakeQueue:
    sent: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)

    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> None:
        self.sent.append((queue_url, body, delay_seconds))

    def receive(self, queue_url: str, limit: int = 10) -> list[Received]:
        mine = [(i, b) for i, (u, b, _) in enumerate(self.sent) if u == queue_url][:limit]
        return [Received(json.dumps(b), str(i)) for i, b in mine]

    def delete(self, queue_url: str, receipt: str) -> None:
        self.sent[int(receipt)] = ("deleted", {}, 0)


SCHEDULE_ROLE = "arn:aws:iam::123456789012:role/stack-ScheduleRole"


class FakeSchedules:
    """EventBridge Scheduler's job schedules: a state change replaces the record, as
    UpdateSchedule does, and is counted (no change, no update)."""

    def __init__(self, *records: ScheduleRecord) -> None:
        self.records = list(records)
        self.updates: list[tuple[str, str]] = []

    def schedules(self) -> list[ScheduleRecord]:
        return list(self.records)

    def set_state(self, record: ScheduleRecord, state: str) -> ScheduleRecord:
        self.updates.append((record.name, state))
        i = next(i for i, r in enumerate(self.records) if r.name == record.name)
        self.records[i] = replace(self.records[i], state=state)
        return self.records[i]


def schedule_record(
    name: str,
    expression: str,
    state: str = "ENABLED",
    created_at: datetime | None = None,
    role_arn: str = SCHEDULE_ROLE,
    **tick: object,
) -> ScheduleRecord:
    """A job schedule named stack-NAME whose ticks' jobs carry NAME (demo jobs by default)."""
    body = {"schedule": name, "scheduled_time": "<aws.scheduler.scheduled-time>"}
    body.update({"job": {"definition": "demo"}, **tick})
    return ScheduleRecord(
        name=f"stack-{name}",
        group="stack-jobs",
        expression=expression,
        timezone="UTC",
        state=state,
        created_at=created_at,
        description=None,
        input=json.dumps(body),
        arn=f"arn:aws:scheduler:us-east-1:123456789012:schedule/stack-jobs/stack-{name}",
        role_arn=role_arn,
    )


def fake_deps(**env: str) -> Deps:
    return Deps(
        repo=FakeRepo(),
        launcher=FakeLauncher(),
        queue=FakeQueue(),
        settings=settings(**env),
        clock=FakeClock(),
        rand=lambda: 0.5,
    )


def array_deps() -> Deps:
    """fake_deps with array counters in memory."""
    from jobtracker.usecases.ports import MemoryArrayCounters

    deps = fake_deps()
    deps.arrays = MemoryArrayCounters()
    return deps


def repo(deps: Deps) -> FakeRepo:
    assert isinstance(deps.repo, FakeRepo)
    return deps.repo


def launcher(deps: Deps) -> FakeLauncher:
    assert isinstance(deps.launcher, FakeLauncher)
    return deps.launcher


def queue(deps: Deps) -> FakeQueue:
    assert isinstance(deps.queue, FakeQueue)
    return deps.queue

"""Small fakes for unit tests of the logic (integration tests use the real ones on moto)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jobtracker.config import Settings, load_settings
from jobtracker.domain import Job, JobStatus, TaskState
from jobtracker.launcher import Describe, LaunchRequest, LaunchResult
from jobtracker.repository import (
    ApplyResult,
    FastApply,
    IdempotencyConflict,
    IdempotencyRecord,
    StaleJob,
)
from jobtracker.service import Deps

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


@dataclass
class FakeRepo:
    """Keeps jobs as deep copies; the fast path always reports a conflict, so the logic's
    read-modify-write path is what unit tests exercise."""

    jobs: dict[str, Job] = field(default_factory=dict)
    idem: dict[str, IdempotencyRecord] = field(default_factory=dict)
    saves: int = 0
    gets: int = 0

    def create(
        self, job: Job, idem: IdempotencyRecord | None = None, watch_at: str | None = None
    ) -> Job:
        if idem is not None and idem.key in self.idem:
            existing = self.idem[idem.key]
            raise IdempotencyConflict(existing.job_id, existing.body_hash)
        job.rev = 1
        self.jobs[job.job_id] = job.clone()
        if idem is not None:
            self.idem[idem.key] = idem
        return job

    def get(self, job_id: str) -> Job | None:
        self.gets += 1
        job = self.jobs.get(job_id)
        return job.clone() if job else None

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        return self.idem.get(key)

    def save(self, job: Job, watch_at: str | None) -> Job:
        stored = self.jobs[job.job_id]
        if stored.rev != job.rev:
            raise StaleJob(job.job_id)
        job.rev += 1
        self.saves += 1
        self.jobs[job.job_id] = job.clone()
        return job

    def apply_state(
        self,
        job_id: str,
        attempt: int,
        state: TaskState,
        job_status: JobStatus | None,
        allowed_from: frozenset[JobStatus],
    ) -> FastApply:
        return FastApply(ApplyResult.CONFLICT)

    def record_history(self, job_id: str, attempt: int, state: TaskState) -> bool:
        return False

    def list_jobs(self, *args: Any) -> tuple[list[Job], str | None]:
        return list(self.jobs.values()), None

    def due_for_watch(self, now: str, limit: int) -> list[str]:
        return []


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


def fake_deps(**env: str) -> Deps:
    return Deps(
        repo=FakeRepo(),
        launcher=FakeLauncher(),
        queue=FakeQueue(),
        settings=settings(**env),
        clock=FakeClock(),
        rand=lambda: 0.5,
    )

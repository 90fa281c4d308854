"""Unit: the reconciler backs off a job it fails on, and only that job (fakes, no AWS)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobtracker.adapters.launcher import Describe, LaunchRequest, LaunchResult
from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, JobStatus
from jobtracker.core.lifecycle import Change
from jobtracker.core.submission import Submission
from jobtracker.edge.task_events import handle_task_event
from jobtracker.usecases.ports import Written
from jobtracker.usecases.reconcile import Report, reconcile
from jobtracker.usecases.submit import build_job, submit_job
from jobtracker.wiring import Deps
from tests.fakes import FakeClock, FakeLauncher, FakeQueue, FakeRepo, fake_deps
from tests.helpers import ecs_event, handed_off


@dataclass
class PoisonLauncher(FakeLauncher):
    """RunTask raises (not a launch failure ECS reports: an exception) for the poisoned tokens;
    DescribeTasks raises when `describe_fails`."""

    poisoned: set[str] = field(default_factory=set)  # client tokens
    describe_fails: bool = False

    def run_task(self, request: LaunchRequest) -> LaunchResult:
        if request.client_token in self.poisoned:
            self.requests.append(request)
            raise RuntimeError("RunTask blew up")
        return super().run_task(request)

    def describe_tasks(self, cluster: str, task_arns: list[str]) -> Describe:
        if self.describe_fails:
            raise RuntimeError("DescribeTasks is down")
        return super().describe_tasks(cluster, task_arns)


@dataclass
class PoisonQueue(FakeQueue):
    down: bool = False

    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> None:
        if self.down:
            raise RuntimeError("SQS is down")
        super().send(queue_url, body, delay_seconds)


class BackoffWritesFail(FakeRepo):
    """DynamoDB refuses the reconciler's backoff writes (and only those)."""

    def apply(self, change: Change) -> Written:
        if change.transition == lifecycle.RECONCILE_FAILED:
            raise RuntimeError("DynamoDB is down")
        return super().apply(change)


def poisoned_deps(repo: FakeRepo | None = None) -> tuple[Deps, PoisonLauncher, FakeClock]:
    base = fake_deps()
    launcher = PoisonLauncher()
    deps = Deps(repo or FakeRepo(), launcher, PoisonQueue(), base.settings, base.clock, base.rand)
    assert isinstance(deps.clock, FakeClock)
    return deps, launcher, deps.clock


def stuck_pending(deps: Deps, n: int = 1) -> list[Job]:
    """Jobs stored by a create_job that died before RunTask: the reconciler owes each a launch."""
    jobs = [
        build_job(Submission(definition="demo"), deps.settings, deps.clock(), "me")
        for _ in range(n)
    ]
    for job in jobs:
        deps.repo.create(job)
    deps.clock.advance(deps.settings.decision_grace_seconds + 1)
    return jobs


def tries(launcher: FakeLauncher, job: Job) -> int:
    return sum(r.client_token == job.current.client_token for r in launcher.requests)


def stored(deps: Deps, job: Job) -> Job:
    found = deps.repo.get(job.job_id)
    assert found is not None
    return found


def run_each_minute(deps: Deps, clock: FakeClock, minutes: int) -> list[Report]:
    reports = []
    for _ in range(minutes):
        clock.advance(60)
        reports.append(reconcile(deps))
    return reports


def test_a_job_whose_action_raises_is_skipped_on_the_next_run_and_tried_after_its_backoff() -> None:
    # GIVEN a stuck PENDING job whose RunTask raises
    deps, launcher, clock = poisoned_deps()
    (job,) = stuck_pending(deps)
    launcher.poisoned.add(job.current.client_token)
    # WHEN the reconciler fails on it, then runs once a minute
    first = reconcile(deps)
    failures = stored(deps, job).reconcile_failures
    after_one, after_two = run_each_minute(deps, clock, 2)
    # THEN the failure was counted, the next run left the job alone, and the one after tried it
    assert first.errors == 1 and failures == 1, (first, failures)
    assert (after_one.backed_off, after_one.errors) == (1, 0), "the next run must skip the job"
    assert after_two.backed_off == 0 and after_two.errors == 1, "tried again after 2 minutes"
    assert tries(launcher, job) == 2, "RunTask once per try, none while backed off"


def test_consecutive_failures_grow_the_backoff_up_to_an_hour() -> None:
    # GIVEN a job whose RunTask always raises
    deps, launcher, clock = poisoned_deps()
    (job,) = stuck_pending(deps)
    launcher.poisoned.add(job.current.client_token)
    # WHEN the reconciler runs every minute for over four hours
    tried_at = [0] if reconcile(deps).errors else []
    for minute, report in enumerate(run_each_minute(deps, clock, 250), start=1):
        if report.errors:
            tried_at.append(minute)
    # THEN the gaps between tries double from 2 minutes and stop growing at 60
    gaps = [b - a for a, b in itertools.pairwise(tried_at)]
    assert gaps == [2, 4, 8, 16, 32, 60, 60, 60], tried_at
    assert stored(deps, job).reconcile_failures == len(tried_at), "every failure counted"


def test_a_reconciler_action_that_succeeds_after_a_failure_ends_the_backoff() -> None:
    # GIVEN a failed attempt whose hand-off to retry_decider went missing, and SQS down
    deps, _, clock = poisoned_deps()
    queue = deps.queue
    assert isinstance(queue, PoisonQueue)
    job = submit_job(Submission(definition="demo"), "me", None, deps).job
    handle_task_event(ecs_event("task_stopped_exit_2", job.job_id), deps)
    clock.now = datetime(2026, 11, 21, tzinfo=UTC)  # the fixture stopped 2026-11-20: long ago
    queue.down = True
    failed = reconcile(deps)
    before = stored(deps, job)
    # WHEN SQS is back and the reconciler hands the job off again after its backoff
    queue.down = False
    reports = run_each_minute(deps, clock, 2)
    # THEN the hand-off went, the job did not move, and its failures are forgotten all the same
    assert failed.errors == 1 and before.reconcile_failures == 1, failed
    assert reports[-1].actions["redecide"] == 1 and reports[-1].errors == 0, reports
    assert handed_off(queue.sent[-1][1])["kind"] == "decide", queue.sent[-1]
    after = stored(deps, job)
    assert after.current.awaiting_decision and after.status == before.status, "no status move"
    assert (after.reconcile_failures, after.reconcile_failed_at) == (0, None), "backoff ended"


def test_a_job_that_moves_on_ends_its_backoff_without_the_reconciler() -> None:
    # GIVEN a job the reconciler backed off while it was PENDING
    deps, launcher, _ = poisoned_deps()
    (job,) = stuck_pending(deps)
    launcher.poisoned.add(job.current.client_token)
    reconcile(deps)
    assert stored(deps, job).reconcile_failures == 1
    # WHEN its task reports RUNNING (an event: it never reads the backoff)
    result = handle_task_event(ecs_event("task_running", job.job_id), deps)
    # THEN the event applied and, the job having moved on, its backoff is gone
    after = stored(deps, job)
    assert result.value == "applied" and after.status == JobStatus.RUNNING, result
    assert (after.reconcile_failures, after.reconcile_failed_at) == (0, None)


def test_one_poison_job_among_many_does_not_stop_the_others() -> None:
    # GIVEN five stuck PENDING jobs, the second of which makes RunTask raise
    deps, launcher, clock = poisoned_deps()
    jobs = stuck_pending(deps, 5)
    poison = jobs[1]
    launcher.poisoned.add(poison.current.client_token)
    # WHEN the reconciler runs twice, a minute apart
    first = reconcile(deps)
    (second,) = run_each_minute(deps, clock, 1)
    # THEN every other job was launched, and only the poison one is backed off
    others = [stored(deps, j) for j in jobs if j is not poison]
    assert all(j.status == JobStatus.STARTING for j in others), [j.status for j in others]
    assert all(j.reconcile_failures == 0 for j in others), "no other job backs off"
    assert (first.actions["launch"], first.errors) == (5, 1), first
    assert second.backed_off == 1 and stored(deps, poison).status == JobStatus.PENDING


def test_a_backoff_that_cannot_be_recorded_is_only_logged() -> None:
    # GIVEN a job whose RunTask raises, and DynamoDB refusing the backoff write
    deps, launcher, clock = poisoned_deps(BackoffWritesFail())
    (job,) = stuck_pending(deps)
    launcher.poisoned.add(job.current.client_token)
    # WHEN the reconciler fails on it twice, a minute apart
    reports = [reconcile(deps), *run_each_minute(deps, clock, 1)]
    # THEN nothing raised out of the run, each failure was counted, and with no backoff stored
    # the job was simply tried again on the next run
    assert [r.errors for r in reports] == [1, 1], reports
    assert stored(deps, job).reconcile_failures == 0 and tries(launcher, job) == 2


def test_a_failing_describe_tasks_backs_no_job_off() -> None:
    # GIVEN two launched jobs gone quiet, and DescribeTasks failing for their cluster
    deps, launcher, clock = poisoned_deps()
    jobs = [submit_job(Submission(definition="demo"), "me", None, deps).job for _ in range(2)]
    launcher.describe_fails = True
    clock.advance(deps.settings.quiet_after_seconds + 1)
    # WHEN the reconciler looks at them
    report = reconcile(deps)
    # THEN the failure is counted once for the cluster, and neither job is backed off
    assert report.actions["describe"] == 2 and report.errors == 1, report
    assert [stored(deps, j).reconcile_failures for j in jobs] == [0, 0], "an outage is no poison"

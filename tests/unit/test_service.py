"""Unit: the service logic with fakes (repository, launcher, queue, clock)."""

from __future__ import annotations

import pytest

from jobtracker.adapters.launcher import LaunchResult
from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, JobStatus, LaunchFailure
from jobtracker.core.errors import InvalidInput
from jobtracker.core.lifecycle import Change
from jobtracker.core.submission import Submission
from jobtracker.edge.task_events import handle_task_event
from jobtracker.usecases.cancel import cancel_job
from jobtracker.usecases.decide import decide_attempt
from jobtracker.usecases.launch import handle_launch_message
from jobtracker.usecases.submit import SubmitKind, submit_job
from jobtracker.usecases.write import write
from tests.fakes import FakeClock, FakeLauncher, FakeQueue, FakeRepo, fake_deps
from tests.helpers import ecs_event, handed_off, submission_of


def sub(**kw: object) -> Submission:
    return submission_of({"definition": "demo", **kw})


def test_submit_launches_once_and_replay_reattaches() -> None:
    deps = fake_deps()
    first = submit_job(sub(), "me", "key-1", deps)
    again = submit_job(sub(), "me", "key-1", deps)
    assert first.kind == SubmitKind.CREATED and again.kind == SubmitKind.REPLAYED
    assert first.job.job_id == again.job.job_id
    assert isinstance(deps.launcher, FakeLauncher) and len(deps.launcher.requests) == 1


def test_unknown_definition_writes_nothing() -> None:
    deps = fake_deps()
    with pytest.raises(InvalidInput) as info:
        submit_job(sub(definition="other"), "me", None, deps)
    assert info.value.fields == [
        {"field": "definition", "message": "unknown job definition 'other' (known: demo)"}
    ]
    assert isinstance(deps.repo, FakeRepo) and deps.repo.jobs == {}


def test_retryable_launch_failure_queues_a_delayed_launch_then_launches() -> None:
    deps = fake_deps()
    launcher, queue, clock = deps.launcher, deps.queue, deps.clock
    assert (
        isinstance(launcher, FakeLauncher)
        and isinstance(queue, FakeQueue)
        and isinstance(clock, FakeClock)
    )
    launcher.fail_with = LaunchResult(error="RESOURCE:CPU", failure=LaunchFailure.WAIT)
    submitted = submit_job(sub(), "me", None, deps)
    assert submitted.kind == SubmitKind.ACCEPTED
    url, body, delay = queue.sent[-1]
    assert url == deps.settings.launch_queue_url and body["kind"] == "launch" and delay == 4
    # too early: the message is chained, not launched
    assert handle_launch_message(submitted.job.job_id, 1, deps) == "rescheduled"
    launcher.fail_with = None
    clock.advance(10)
    assert handle_launch_message(submitted.job.job_id, 1, deps) == "launched"
    assert deps.repo.get(submitted.job.job_id).status == JobStatus.STARTING  # type: ignore[union-attr]
    assert handle_launch_message(submitted.job.job_id, 1, deps) == "not-pending"


def test_failed_attempt_goes_through_decider_to_next_attempt() -> None:
    deps = fake_deps()
    queue, clock = deps.queue, deps.clock
    assert isinstance(queue, FakeQueue) and isinstance(clock, FakeClock)
    job = submit_job(sub(retry={"backoff": {"base_seconds": 4}}), "me", None, deps).job
    assert handle_task_event(ecs_event("task_stopped_exit_2", job.job_id), deps).value == "applied"
    assert handed_off(queue.sent[-1][1]) == {"kind": "decide", "job_id": job.job_id, "attempt": 1}
    outcome = decide_attempt(job.job_id, 1, deps)
    assert outcome.action == "RETRY" and outcome.next_attempt == 2
    assert queue.sent[-1][1] == {"kind": "launch", "job_id": job.job_id, "attempt": 2}
    # redelivered decision: nothing decided twice, launch re-queued
    assert decide_attempt(job.job_id, 1, deps).action == "relaunch-queued"
    clock.advance(5)
    assert handle_launch_message(job.job_id, 2, deps) == "launched"
    stored = deps.repo.get(job.job_id)
    assert stored is not None and stored.status == JobStatus.STARTING and stored.attempt == 2


def test_malformed_and_foreign_events_are_dropped() -> None:
    from tests.conftest import load_event

    deps = fake_deps()
    for name in ("malformed_no_version", "malformed_version_type", "malformed_detail"):
        assert handle_task_event(load_event(name), deps).value == "malformed"
    assert handle_task_event(load_event("foreign_service_task"), deps).value == "foreign"
    assert handle_task_event(load_event("other_cluster_task"), deps).value == "foreign"
    assert handle_task_event({"unexpected": True}, deps).value == "malformed"


def test_launch_records_the_task_on_the_job_in_hand_without_reading_it_again() -> None:
    # Given a fresh deployment
    deps = fake_deps()
    repo = deps.repo
    assert isinstance(repo, FakeRepo)
    # When a job is submitted (create, RunTask, record the task)
    job = submit_job(sub(), "me", None, deps).job
    # Then the task was recorded with one guarded write on the created copy, no read
    assert (repo.gets, repo.writes) == (0, 1)
    stored = repo.get(job.job_id)
    assert stored is not None and stored.status == JobStatus.STARTING and stored.current.task_arn


def test_an_event_is_one_write_and_no_read() -> None:
    # GIVEN a launched job
    deps = fake_deps()
    repo = deps.repo
    assert isinstance(repo, FakeRepo)
    job = submit_job(sub(), "me", None, deps).job
    gets, writes = repo.gets, repo.writes
    # WHEN its task reports RUNNING, then STOPPED with success
    for fixture in ("task_running", "task_stopped_success"):
        task = job.current.task_arn
        assert handle_task_event(ecs_event(fixture, job.job_id, task_arn=task), deps).value == (
            "applied"
        )
    # THEN each event was one write, and nothing was read
    assert (repo.gets - gets, repo.writes - writes, repo.refused) == (0, 2, 0)
    assert repo.get(job.job_id).status == JobStatus.SUCCEEDED  # type: ignore[union-attr]


def test_a_refused_guard_is_planned_again_from_the_job_the_store_hands_back() -> None:
    # GIVEN a copy taken before the job was cancelled elsewhere
    deps = fake_deps()
    repo = deps.repo
    assert isinstance(repo, FakeRepo)
    job = submit_job(sub(), "me", None, deps).job
    copy = repo.get(job.job_id)
    assert copy is not None
    cancel_job(job.job_id, "elsewhere", deps)
    seen: list[JobStatus] = []

    # WHEN a change planned on the old copy is written
    def plan(j: Job | None) -> tuple[Change | None, None]:
        assert j is not None
        seen.append(j.status)
        return lifecycle.request_stop(j, 1, lifecycle.StopRequest.TIMEOUT, deps.clock()), None

    stored, _, written = write(deps, job.job_id, plan, known=copy)
    # THEN the guard refused it, and the plan made again on the stored job found nothing to do
    assert seen == [JobStatus.STARTING, JobStatus.CANCELLING]
    assert not written and stored is not None and stored.stop_request == "cancel"
    assert repo.refused == 1


def test_a_quiet_job_is_described_once_per_quiet_period_not_every_run() -> None:
    from jobtracker.core.lifecycle import Due
    from jobtracker.usecases.reconcile import plan

    # GIVEN a running job that has gone quiet
    deps = fake_deps()
    clock = deps.clock
    assert isinstance(clock, FakeClock)
    job = submit_job(sub(), "me", None, deps).job
    quiet = deps.settings.quiet_after_seconds
    looks = []
    # WHEN the reconciler runs every minute for two quiet periods
    for _ in range(2 * quiet // 60 + 1):
        clock.advance(60)
        looks.append(plan(job, clock(), deps) == [Due.LOOK])
    # THEN it looked once per period, and only once the job had been quiet long enough
    assert sum(looks) == 2, looks
    assert not any(looks[: quiet // 60 - 1])

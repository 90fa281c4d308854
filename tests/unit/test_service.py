"""Unit: the service logic with fakes (repository, launcher, queue, clock)."""

from __future__ import annotations

import pytest

from jobtracker.api_models import JobSubmission
from jobtracker.domain import Job, JobStatus
from jobtracker.errors import ApiError
from jobtracker.launcher import LaunchResult
from jobtracker.service import (
    decide_attempt,
    handle_launch_message,
    handle_task_event,
    mutate,
    submit_job,
)
from tests.fakes import FakeClock, FakeLauncher, FakeQueue, FakeRepo, fake_deps
from tests.helpers import ecs_event


def sub(**kw: object) -> JobSubmission:
    return JobSubmission.model_validate({"definition": "demo", **kw})


def test_submit_launches_once_and_replay_reattaches() -> None:
    deps = fake_deps()
    first = submit_job(sub(), "me", "key-1", deps)
    again = submit_job(sub(), "me", "key-1", deps)
    assert first.http_status == 201 and again.http_status == 200
    assert first.job.job_id == again.job.job_id
    assert isinstance(deps.launcher, FakeLauncher) and len(deps.launcher.requests) == 1


def test_unknown_definition_writes_nothing() -> None:
    deps = fake_deps()
    with pytest.raises(ApiError) as info:
        submit_job(sub(definition="other"), "me", None, deps)
    assert info.value.status == 422 and "definition" in info.value.message
    assert isinstance(deps.repo, FakeRepo) and deps.repo.jobs == {}


def test_retryable_launch_failure_queues_a_delayed_launch_then_launches() -> None:
    deps = fake_deps()
    launcher, queue, clock = deps.launcher, deps.queue, deps.clock
    assert (
        isinstance(launcher, FakeLauncher)
        and isinstance(queue, FakeQueue)
        and isinstance(clock, FakeClock)
    )
    launcher.fail_with = LaunchResult(error="RESOURCE:CPU", retryable=True)
    submitted = submit_job(sub(), "me", None, deps)
    assert submitted.http_status == 202
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
    assert queue.sent[-1][1] == {"kind": "decide", "job_id": job.job_id, "attempt": 1}
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
    assert (repo.gets, repo.saves) == (0, 1)
    stored = repo.get(job.job_id)
    assert stored is not None and stored.status == JobStatus.STARTING and stored.current.task_arn


def test_a_stale_copy_is_refused_and_the_change_made_on_a_fresh_read() -> None:
    # Given a stored job and a copy of it that someone else's write has since made stale
    deps = fake_deps()
    job = submit_job(sub(), "me", None, deps).job
    stale = deps.repo.get(job.job_id)
    assert stale is not None
    mutate(deps, job.job_id, lambda j: (True, setattr(j, "status_reason", "theirs")))

    # When a change is applied starting from the stale copy
    def change(j: Job) -> tuple[bool, str | None]:
        return True, j.status_reason

    stored, seen = mutate(deps, job.job_id, change, known=stale)
    # Then the guarded write refused the copy and the change saw the other writer's state
    assert seen == "theirs"
    assert stored is not None and stored.status_reason == "theirs"


def test_nothing_to_do_on_a_copy_is_checked_again_on_a_fresh_read() -> None:
    # Given a copy taken before the job was cancelled elsewhere
    deps = fake_deps()
    job = submit_job(sub(), "me", None, deps).job
    copy = deps.repo.get(job.job_id)
    assert copy is not None
    mutate(deps, job.job_id, lambda j: (True, setattr(j, "status", JobStatus.CANCELLING)))

    # When a change that only acts on CANCELLING jobs starts from the old copy
    def finish_cancel(j: Job) -> tuple[bool, bool]:
        if j.status != JobStatus.CANCELLING:
            return False, False  # nothing to do: on the stale copy only
        j.status = JobStatus.CANCELLED
        return True, True

    stored, done = mutate(deps, job.job_id, finish_cancel, known=copy)
    # Then the unproven "nothing to do" was not trusted: the fresh read got the change
    assert done is True
    assert stored is not None and stored.status == JobStatus.CANCELLED
    assert deps.repo.get(job.job_id).status == JobStatus.CANCELLED  # type: ignore[union-attr]

"""Unit: pure transitions of a job and its attempts (monotonic, version-guarded)."""

from __future__ import annotations

from datetime import UTC, datetime

from jobtracker import lifecycle
from jobtracker.api_models import JobSubmission
from jobtracker.domain import Job, JobStatus, StopRequest, TaskState
from jobtracker.ecs_event import correlate, parse_event
from jobtracker.service import build_job, next_watch
from tests.fakes import settings
from tests.helpers import ecs_event

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def launched_job(**spec: object) -> Job:
    job = build_job(
        JobSubmission.model_validate({"definition": "demo", **spec}), settings(), NOW, "me"
    )
    lifecycle.mark_launched(job, 1, "arn:task/1", NOW, None)
    return job


def state(fixture: str, job: Job, attempt: int = 1, version: int | None = None) -> TaskState:
    return correlate(parse_event(ecs_event(fixture, job.job_id, attempt, version))).state


def test_states_move_the_job_forward_only() -> None:
    job = launched_job()
    assert job.status == JobStatus.STARTING
    lifecycle.apply_task_state(job, 1, state("task_running", job), NOW)
    assert job.status == JobStatus.RUNNING
    # an older PENDING arriving late changes nothing but the history
    change = lifecycle.apply_task_state(job, 1, state("task_pending", job), NOW)
    assert change.applied == lifecycle.Applied.STALE and change.history_added
    assert job.status == JobStatus.RUNNING and job.current.last_status == "RUNNING"
    assert [h["status"] for h in job.current.history_entries()] == ["PENDING", "RUNNING"]


def test_duplicate_changes_nothing() -> None:
    job = launched_job()
    lifecycle.apply_task_state(job, 1, state("task_running", job), NOW)
    before = job.clone()
    change = lifecycle.apply_task_state(job, 1, state("task_running", job), NOW)
    assert change.applied == lifecycle.Applied.DUPLICATE
    assert job == before


def test_success_ends_job_succeeded() -> None:
    job = launched_job()
    change = lifecycle.apply_task_state(job, 1, state("task_stopped_success", job), NOW)
    assert change.job_changed and not change.needs_decision
    assert job.status == JobStatus.SUCCEEDED and job.current.outcome == "succeeded"
    assert job.finished_at


def test_failure_waits_for_decision_and_redelivery_hands_off_again() -> None:
    job = launched_job()
    change = lifecycle.apply_task_state(job, 1, state("task_stopped_exit_2", job), NOW)
    assert change.needs_decision and job.current.awaiting_decision
    assert job.status == JobStatus.STARTING  # the decider moves it, not the event
    again = lifecycle.apply_task_state(job, 1, state("task_stopped_exit_2", job), NOW)
    assert again.applied == lifecycle.Applied.DUPLICATE and again.needs_decision


def test_stop_we_asked_for_ends_in_that_state() -> None:
    for request, status in [
        (StopRequest.CANCEL, JobStatus.CANCELLED),
        (StopRequest.TIMEOUT, JobStatus.TIMED_OUT),
    ]:
        job = launched_job()
        job.stop_request = request
        lifecycle.apply_task_state(job, 1, state("task_stopped_user_initiated", job), NOW)
        assert job.status == status


def test_natural_success_wins_over_a_late_stop_request() -> None:
    job = launched_job()
    job.stop_request = StopRequest.TIMEOUT
    lifecycle.apply_task_state(job, 1, state("task_stopped_success", job), NOW)
    assert job.status == JobStatus.SUCCEEDED


def test_old_attempt_event_never_changes_current_status() -> None:
    job = launched_job()
    lifecycle.apply_task_state(job, 1, state("task_stopped_exit_2", job), NOW)
    lifecycle.decide_retry(job, 1, NOW, settings(), rand=lambda: 0.0)
    assert job.attempt == 2 and job.status == JobStatus.PENDING
    # a late RUNNING of attempt 1 (lower version) and a redelivered STOPPED of attempt 1
    lifecycle.apply_task_state(job, 1, state("task_running", job), NOW)
    lifecycle.apply_task_state(job, 1, state("task_stopped_success", job, version=9), NOW)
    assert job.status == JobStatus.PENDING and job.attempt == 2
    assert job.attempts[1].outcome == "retry"


def test_terminal_state_is_never_left() -> None:
    job = launched_job()
    lifecycle.apply_task_state(job, 1, state("task_stopped_success", job), NOW)
    lifecycle.apply_task_state(job, 1, state("task_running", job, version=99), NOW)
    assert job.status == JobStatus.SUCCEEDED
    assert lifecycle.request_cancel(job, None, NOW).conflict


def test_spot_notice_is_recorded_on_the_attempt() -> None:
    job = launched_job()
    lifecycle.apply_task_state(job, 1, state("spot_interruption_notice", job), NOW)
    assert job.current.spot_interruption_at and job.current.stop_code == "TerminationNotice"
    assert job.status == JobStatus.RUNNING


def test_decide_retry_schedules_next_attempt_with_backoff() -> None:
    job = launched_job(retry={"backoff": {"base_seconds": 10, "factor": 2, "cap_seconds": 100}})
    lifecycle.apply_task_state(job, 1, state("task_stopped_exit_2", job), NOW)
    plan = lifecycle.decide_retry(job, 1, NOW, settings(), rand=lambda: 0.5)
    assert plan is not None and plan.next_attempt == 2 and plan.wait_seconds == 5
    assert job.not_before == "2026-01-01T00:00:05.000Z"
    assert job.attempts[2].client_token == f"{job.job_id}-a2"
    assert lifecycle.decide_retry(job, 1, NOW, settings()) is None  # idempotent


def test_cancel_pending_job_is_immediate() -> None:
    job = build_job(JobSubmission.model_validate({"definition": "demo"}), settings(), NOW, "me")
    result = lifecycle.request_cancel(job, "not needed", NOW)
    assert result.accepted and result.stop_task is None
    assert job.status == JobStatus.CANCELLED and job.status_reason == "cancelled: not needed"


def test_cancel_running_job_asks_for_stop() -> None:
    job = launched_job()
    result = lifecycle.request_cancel(job, None, NOW)
    assert job.status == JobStatus.CANCELLING and result.stop_task == "arn:task/1"
    assert lifecycle.request_cancel(job, None, NOW).accepted  # again: harmless


def test_launch_failures_back_off_then_fail() -> None:
    job = build_job(JobSubmission.model_validate({"definition": "demo"}), settings(), NOW, "me")
    s = settings(MAX_LAUNCH_FAILURES="3")
    waits = [
        lifecycle.record_launch_failure(job, 1, "RESOURCE:MEMORY", True, NOW, s, lambda: 1.0)
        for _ in range(3)
    ]
    assert waits[:2] == [5.0, 10.0] and waits[2] is None
    assert job.status == JobStatus.FAILED and "RESOURCE:MEMORY" in (job.status_reason or "")


def test_watch_time_tracks_deadlines() -> None:
    job = launched_job(timeout_seconds=60)
    s = settings()
    assert next_watch(job, s, NOW) == "2026-01-01T00:01:00.000Z"  # the run timeout comes first
    lifecycle.apply_task_state(job, 1, state("task_stopped_success", job), NOW)
    assert next_watch(job, s, NOW) is None

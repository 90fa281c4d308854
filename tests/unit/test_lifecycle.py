"""Unit: pure transitions of a job and its attempts (monotonic, version-guarded)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, JobStatus, LaunchFailure, StopRequest, TaskState
from jobtracker.core.lifecycle import Change, Due
from jobtracker.edge.ecs_event import correlate, parse_event
from jobtracker.usecases.submit import build_job
from tests.fakes import settings
from tests.helpers import ecs_event, submission_of

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def applied(job: Job, change: Change | None) -> Job:
    """A planned change, done to the job in memory as the store would do it."""
    if change is not None:
        assert change.guard.holds(job), f"{change.transition.name} refused by its own guard"
        change.apply_to(job)
    return job


def new_job(**spec: object) -> Job:
    return build_job(submission_of({"definition": "demo", **spec}), settings(), NOW, "me")


def launched_job(**spec: object) -> Job:
    job = new_job(**spec)
    return applied(job, lifecycle.record_launch(job, 1, "arn:task/1", NOW, None)[0])


def decided(job: Job, **kwargs: object) -> lifecycle.RetryPlan | None:
    plan = lifecycle.decide_retry(job, 1, NOW, settings(), **kwargs)  # type: ignore[arg-type]
    if plan is not None:
        applied(job, plan.change)
    return plan


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


@pytest.mark.parametrize(
    ("request_", "status"),
    [(StopRequest.CANCEL, JobStatus.CANCELLED), (StopRequest.TIMEOUT, JobStatus.TIMED_OUT)],
    ids=["cancel", "timeout"],
)
def test_stop_we_asked_for_ends_in_that_state(request_: StopRequest, status: JobStatus) -> None:
    # GIVEN a launched job whose stop we asked for WHEN its task stops as asked
    job = launched_job()
    job.stop_request = request_
    lifecycle.apply_task_state(job, 1, state("task_stopped_user_initiated", job), NOW)
    # THEN it ends in the status the request names
    assert job.status == status, job.status


def test_natural_success_wins_over_a_late_stop_request() -> None:
    job = launched_job()
    job.stop_request = StopRequest.TIMEOUT
    lifecycle.apply_task_state(job, 1, state("task_stopped_success", job), NOW)
    assert job.status == JobStatus.SUCCEEDED


def test_old_attempt_event_never_changes_current_status() -> None:
    job = launched_job()
    lifecycle.apply_task_state(job, 1, state("task_stopped_exit_2", job), NOW)
    decided(job, rand=lambda: 0.0)
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
    plan = decided(job, rand=lambda: 0.5)
    assert plan is not None and plan.next_attempt == 2 and plan.wait_seconds == 5
    assert job.not_before == "2026-01-01T00:00:05.000Z"
    assert job.attempts[2].client_token == f"{job.job_id}-a2"
    assert lifecycle.decide_retry(job, 1, NOW, settings()) is None  # idempotent


def test_cancel_pending_job_is_immediate() -> None:
    job = new_job()
    result = lifecycle.request_cancel(job, "not needed", NOW)
    applied(job, result.change)
    assert result.accepted and result.stop_task is None
    assert job.status == JobStatus.CANCELLED and job.status_reason == "cancelled: not needed"


def test_cancel_running_job_asks_for_stop() -> None:
    job = launched_job()
    result = lifecycle.request_cancel(job, None, NOW)
    applied(job, result.change)
    assert job.status == JobStatus.CANCELLING and result.stop_task == "arn:task/1"
    assert lifecycle.request_cancel(job, None, NOW).accepted  # again: harmless


def launch_failures(job: Job, error: str, kind: LaunchFailure, times: int, **env: str) -> list:
    s = settings(**env)
    waits = []
    for _ in range(times):
        planned = lifecycle.record_launch_failure(job, 1, error, kind, NOW, s, lambda: 1.0)
        assert planned is not None
        applied(job, planned[0])
        waits.append(planned[1])
    return waits


def test_transient_launch_errors_back_off_then_fail() -> None:
    job = new_job()
    waits = launch_failures(
        job, "ServerException: oops", LaunchFailure.RETRY, 3, MAX_LAUNCH_FAILURES="3"
    )
    assert waits[:2] == [5.0, 10.0] and waits[2] is None
    assert job.status == JobStatus.FAILED and "ServerException" in (job.status_reason or "")


def test_capacity_and_throttling_make_a_job_wait_never_fail() -> None:
    # GIVEN a job whose launches keep meeting no capacity, far more often than the retry bound
    job = new_job()
    waits = launch_failures(job, "RESOURCE:MEMORY", LaunchFailure.WAIT, 20, MAX_LAUNCH_FAILURES="3")
    # THEN it is still waiting, visibly, with a capped backoff
    assert job.status == JobStatus.PENDING
    assert job.status_reason == "waiting for launch capacity: RESOURCE:MEMORY"
    assert all(w is not None for w in waits) and max(w for w in waits if w) <= 300


def test_waiting_for_capacity_spends_none_of_the_transient_error_retries() -> None:
    # GIVEN a job that waited for capacity more times than transient errors may be retried
    job = new_job()
    launch_failures(job, "RESOURCE:MEMORY", LaunchFailure.WAIT, 5, MAX_LAUNCH_FAILURES="3")
    # WHEN its launch then meets a transient service error
    waits = launch_failures(
        job, "ServerException: oops", LaunchFailure.RETRY, 1, MAX_LAUNCH_FAILURES="3"
    )
    # THEN it is retried, not FAILED: the waits are counted apart from the failures
    assert job.status == JobStatus.PENDING, f"failed after waiting: {job.status_reason}"
    assert waits == [5.0], "the first transient error backs off as the first"
    assert (job.launch_waits, job.launch_failures) == (5, 1)


def test_a_queue_timeout_ends_the_wait_for_capacity() -> None:
    job = new_job(queue_timeout_seconds=60)
    s = settings()
    later = NOW + timedelta(seconds=61)
    planned = lifecycle.record_launch_failure(
        job, 1, "ThrottlingException: Rate exceeded", LaunchFailure.WAIT, later, s
    )
    assert planned is not None and planned[1] is None
    applied(job, planned[0])
    assert job.status == JobStatus.FAILED and job.current.rule == "queue-timeout"
    assert "no launch capacity within 60 s" in (job.status_reason or "")


def test_deadlines_track_the_run_timeout_and_end_with_the_job() -> None:
    job = launched_job(timeout_seconds=60)
    s = settings()
    due = lifecycle.deadlines(job, s)
    assert min(due.values()).isoformat() == "2026-01-01T00:01:00+00:00"  # the run timeout first
    assert min(due, key=lambda d: due[d]) == Due.TIMEOUT
    lifecycle.apply_task_state(job, 1, state("task_stopped_success", job), NOW)
    assert lifecycle.deadlines(job, s) == {}


def through_the_write_path(job: Job, number: int, observed: TaskState) -> Job:
    """As service.apply_state does it: a plan made without a read, and when its guard is
    refused, a plan made from the job as stored."""
    blind = lifecycle.plan_task_state(job.job_id, number, observed, NOW)
    assert blind.change is not None
    if blind.change.guard.holds(job):
        blind.change.apply_to(job)
        return job
    return applied(
        job, lifecycle.plan_task_state(job.job_id, number, observed, NOW, job=job).change
    )


@pytest.mark.parametrize(
    ("fixture", "setup"),
    [
        ("task_pending", lambda j: None),
        ("task_running", lambda j: None),
        ("spot_interruption_notice", lambda j: None),
        ("task_stopped_success", lambda j: None),
        ("task_stopped_exit_2", lambda j: None),
        ("task_stopped_user_initiated", lambda j: setattr(j, "stop_request", StopRequest.CANCEL)),
        ("task_stopped_success", lambda j: setattr(j, "status", JobStatus.CANCELLING)),
    ],
    ids=["pending", "running", "spot-notice", "success", "exit-2", "cancel-asked", "cancelling"],
)
def test_every_state_ends_the_same_with_or_without_a_read(
    fixture: str, setup: Callable[[Job], None]
) -> None:
    # GIVEN a job in one place an event can find it
    reference = launched_job()
    setup(reference)
    fast = reference.clone()
    observed = state(fixture, reference)
    # WHEN one applies it from the job in hand and the other through the no-read path
    lifecycle.apply_task_state(reference, 1, observed, NOW)
    through_the_write_path(fast, 1, observed)
    # THEN both end in the same job
    assert fast == reference, fixture


def test_spot_notice_records_stop_code_and_reason_without_a_read() -> None:
    job = launched_job()
    through_the_write_path(job, 1, state("spot_interruption_notice", job))
    assert job.current.stop_code == "TerminationNotice", "stop code of the notice"
    assert job.current.stopped_reason and "Spot" in job.current.stopped_reason
    assert job.current.spot_interruption_at


def test_the_first_task_of_an_attempt_is_kept() -> None:
    job = launched_job()
    observed = state("task_running", job)
    observed.task_arn = "arn:aws:ecs:us-east-1:1:task/jobtracker/another"
    through_the_write_path(job, 1, observed)
    assert job.current.task_arn == "arn:task/1"


def test_leaving_pending_clears_not_before() -> None:
    # GIVEN a retry waiting for its launch time, whose task reports before the launch record
    job = launched_job()
    lifecycle.apply_task_state(job, 1, state("task_stopped_exit_2", job), NOW)
    decided(job, rand=lambda: 0.5)
    assert job.status == JobStatus.PENDING and job.not_before
    # WHEN attempt 2 is seen RUNNING (no read first)
    through_the_write_path(job, 2, state("task_running", job, attempt=2))
    # THEN it no longer waits for a launch time
    assert job.status == JobStatus.RUNNING and job.not_before is None


def test_a_finished_attempt_keeps_what_decided_it() -> None:
    # GIVEN an attempt that failed with exit code 2
    job = launched_job()
    lifecycle.apply_task_state(job, 1, state("task_stopped_exit_2", job, version=5), NOW)
    before = job.current.containers, job.current.stop_code, job.current.stopped_reason
    # WHEN a STOPPED with a higher version and other containers arrives after it
    late = lifecycle.apply_task_state(job, 1, state("task_stopped_oom", job, version=9), NOW)
    # THEN only the history grew
    assert late.applied == lifecycle.Applied.STALE and late.history_added
    assert (job.current.containers, job.current.stop_code, job.current.stopped_reason) == before
    assert [h["version"] for h in job.current.history_entries()][-1] == 9


@pytest.mark.parametrize(
    "transition",
    [t for t in lifecycle.TRANSITIONS if t.target is not None],
    ids=lambda t: t.name,
)
def test_no_transition_leaves_a_terminal_state_but_an_arrays_retry_round(transition: Any) -> None:
    leaves = any(s.terminal for s in transition.sources)
    assert leaves == (transition in lifecycle.REOPENING), transition.name

"""Integration (moto): cancellation, timeouts, the reconciler and periodic jobs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobtracker.core.domain import JobStatus
from jobtracker.core.submission import ScheduledRun
from jobtracker.edge.api_models import scheduled_run
from jobtracker.edge.task_events import handle_task_event
from jobtracker.usecases.launch import handle_launch_message
from jobtracker.usecases.periodic import Outcome, run_tick, scheduled_job_id
from jobtracker.usecases.reconcile import reconcile
from jobtracker.wiring import Deps
from tests.conftest import AwsEnv
from tests.fakes import FakeClock
from tests.helpers import call_api, drain, ecs_event, inject, invoke, real_deps, submission_of


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def deps(aws: AwsEnv, clock: FakeClock) -> Deps:
    return real_deps(clock)


@pytest.fixture
def stops(aws: AwsEnv) -> list[dict[str, Any]]:
    """Every StopTask call (passed through to moto)."""
    seen: list[dict[str, Any]] = []
    inject("ecs", "StopTask", lambda p: seen.append(p) or None)
    return seen


def submit(deps: Deps, **spec: Any) -> Any:
    from jobtracker.usecases.submit import submit_job

    body = {"definition": "demo", "retry": {"backoff": {"base_seconds": 0}}, **spec}
    return submit_job(submission_of(body), "tester", None, deps).job


def event(
    aws: AwsEnv,
    deps: Deps,
    job_id: str,
    name: str,
    attempt: int = 1,
    version: int | None = None,
    **detail: Any,
) -> str:
    job = deps.repo.get(job_id, full=True)
    assert job is not None
    ev = ecs_event(name, job_id, attempt, version, job.attempts[attempt].task_arn, aws.cluster_arn)
    ev["detail"].update(detail)
    return handle_task_event(ev, deps).value


def status(deps: Deps, job_id: str) -> JobStatus:
    job = deps.repo.get(job_id, full=True)
    assert job is not None
    return job.status


# ---- cancellation ----------------------------------------------------------------------------


def test_cancel_pending_job_is_immediate_and_never_launched(aws: AwsEnv, deps: Deps) -> None:
    inject(
        "ecs",
        "RunTask",
        lambda p: {"tasks": [], "failures": [{"arn": "x", "reason": "RESOURCE:CPU"}]},
    )
    job = submit(deps)
    assert job.status == JobStatus.PENDING
    reply = call_api("POST", f"/jobs/{job.job_id}/cancel", {"reason": "no longer needed"})
    assert reply.status == 200 and reply.body["status"] == "CANCELLED"
    assert reply.body["status_reason"] == "cancelled: no longer needed"
    tokens_before = list(aws.run_task_tokens)
    assert handle_launch_message(job.job_id, 1, deps) == "not-pending"
    assert aws.run_task_tokens == tokens_before


def test_cancel_running_job_stops_the_task_and_ends_cancelled(
    aws: AwsEnv, deps: Deps, stops: list[dict[str, Any]]
) -> None:
    job = submit(deps)
    event(aws, deps, job.job_id, "task_running")
    reply = call_api("POST", f"/jobs/{job.job_id}/cancel")
    assert reply.status == 202 and reply.body["status"] == "CANCELLING"
    assert [s["reason"] for s in stops] == ["jobtracker: cancelled"]
    assert stops[0]["task"] == reply.body["attempts"][0]["task_arn"]
    again = call_api("POST", f"/jobs/{job.job_id}/cancel")  # harmless
    assert again.status == 202 and again.body["status"] == "CANCELLING"
    # the worker got SIGTERM and exited 2 (retryable), but a cancel never retries
    assert (
        event(
            aws,
            deps,
            job.job_id,
            "task_stopped_user_initiated",
            containers=[{"name": "worker", "exitCode": 2, "lastStatus": "STOPPED"}],
        )
        == "applied"
    )
    assert status(deps, job.job_id) == JobStatus.CANCELLED
    assert aws.sent_to(aws.retry_queue_url) == []
    finished = call_api("POST", f"/jobs/{job.job_id}/cancel")
    assert finished.status == 200  # cancelling a cancelled job again is harmless
    done = submit(deps)
    event(aws, deps, done.job_id, "task_stopped_success")
    conflict = call_api("POST", f"/jobs/{done.job_id}/cancel")
    assert conflict.status == 409 and conflict.body["error"]["code"] == "conflict"


def test_cancel_racing_with_a_retry_never_launches(aws: AwsEnv, deps: Deps) -> None:
    job = submit(deps)
    event(aws, deps, job.job_id, "task_stopped_exit_2")
    drain(aws.retry_queue_url)  # decided: attempt 2 PENDING, launch message queued
    assert status(deps, job.job_id) == JobStatus.PENDING
    assert call_api("POST", f"/jobs/{job.job_id}/cancel").body["status"] == "CANCELLED"
    drain(aws.launch_queue_url)
    assert f"{job.job_id}-a2" not in aws.run_task_tokens


def test_cancel_arriving_while_run_task_is_in_flight_stops_the_new_task(
    aws: AwsEnv, deps: Deps, stops: list[dict[str, Any]]
) -> None:
    # Given a PENDING retry whose RunTask is answered only after a cancel was accepted
    job = submit(deps)
    event(aws, deps, job.job_id, "task_stopped_exit_2")
    from jobtracker.usecases.decide import decide_attempt

    decide_attempt(job.job_id, 1, deps)

    def cancel_during_run_task(params: dict[str, Any]) -> None:
        if params["clientToken"].endswith("-a2"):
            call_api("POST", f"/jobs/{job.job_id}/cancel")
        return None

    inject("ecs", "RunTask", cancel_during_run_task)
    deps.clock.advance(1)  # type: ignore[attr-defined]
    handle_launch_message(job.job_id, 2, deps)
    # Then the task that got launched is stopped at once and the job stays CANCELLED
    stored = deps.repo.get(job.job_id, full=True)
    assert stored is not None and stored.status == JobStatus.CANCELLED
    assert stored.attempts[2].task_arn and [s["task"] for s in stops] == [
        stored.attempts[2].task_arn
    ]


# ---- timeouts ---------------------------------------------------------------------------------


def test_run_timeout_stops_the_task_and_ends_timed_out(
    aws: AwsEnv, deps: Deps, clock: FakeClock, stops: list[dict[str, Any]]
) -> None:
    job = submit(deps, timeout_seconds=60)
    started = clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    event(aws, deps, job.job_id, "task_running", startedAt=started)
    clock.advance(30)
    assert reconcile(deps).actions.get("timeout", 0) == 0  # not yet: found, nothing to do
    clock.advance(31)
    report = reconcile(deps)
    assert report.actions["timeout"] == 1
    assert [s["reason"] for s in stops] == ["jobtracker: timeout"]
    event(aws, deps, job.job_id, "task_stopped_user_initiated", stoppedReason="jobtracker: timeout")
    stored = deps.repo.get(job.job_id, full=True)
    assert stored is not None and stored.status == JobStatus.TIMED_OUT
    assert stored.current.outcome == "timed_out"
    assert aws.sent_to(aws.retry_queue_url) == []  # a timeout never retries


def test_timeout_racing_with_natural_stop_ends_in_exactly_one_terminal_state(
    aws: AwsEnv, deps: Deps, clock: FakeClock
) -> None:
    job = submit(deps, timeout_seconds=10)
    event(
        aws,
        deps,
        job.job_id,
        "task_running",
        startedAt=clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    )
    clock.advance(11)
    reconcile(deps)  # asks for the stop
    # the task had finished on its own just before the stop landed
    assert event(aws, deps, job.job_id, "task_stopped_success") == "applied"
    assert status(deps, job.job_id) == JobStatus.SUCCEEDED
    # the stop's own STOPPED (lower version: the same task) and further sweeps change nothing
    event(aws, deps, job.job_id, "task_stopped_user_initiated", version=5)
    clock.advance(600)
    reconcile(deps)
    assert status(deps, job.job_id) == JobStatus.SUCCEEDED


def test_start_deadline_stops_and_retries_per_policy(
    aws: AwsEnv, deps: Deps, clock: FakeClock, stops: list[dict[str, Any]]
) -> None:
    job = submit(deps, start_timeout_seconds=120)
    event(aws, deps, job.job_id, "task_pending")
    clock.advance(121)
    assert reconcile(deps).actions["start_deadline"] == 1
    assert [s["reason"] for s in stops] == ["jobtracker: start deadline exceeded"]
    event(
        aws,
        deps,
        job.job_id,
        "task_stopped_user_initiated",
        stoppedReason="jobtracker: start deadline exceeded",
        startedAt=None,
        containers=[{"name": "worker", "lastStatus": "STOPPED"}],
    )
    drain(aws.retry_queue_url)
    stored = deps.repo.get(job.job_id, full=True)
    assert (
        stored is not None and stored.attempt == 2 and stored.attempts[1].rule == "start-deadline"
    )


# ---- reconciler --------------------------------------------------------------------------------


def describe_response(
    arn: str, cluster: str, job_id: str, status: str, version: int, exit_code: int | None
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "worker", "lastStatus": status}
    if exit_code is not None:
        container["exitCode"] = exit_code
    task = {
        "taskArn": arn,
        "clusterArn": cluster,
        "lastStatus": status,
        "desiredStatus": "STOPPED",
        "version": version,
        "startedBy": job_id,
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "containers": [container],
        "overrides": {
            "containerOverrides": [
                {
                    "name": "worker",
                    "environment": [
                        {"name": "JOB_ID", "value": job_id},
                        {"name": "JOB_ATTEMPT", "value": "1"},
                    ],
                }
            ]
        },
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
        "stoppedAt": datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
    }
    return {"tasks": [task], "failures": []}


@pytest.mark.parametrize(
    ("exit_code", "status", "attempts"),
    [(0, JobStatus.SUCCEEDED, 1), (2, JobStatus.STARTING, 2)],
    ids=["success", "retryable-failure"],
)
def test_dropped_stopped_event_is_recovered_by_describe(
    aws: AwsEnv, deps: Deps, clock: FakeClock, exit_code: int, status: JobStatus, attempts: int
) -> None:
    job = submit(deps)
    event(aws, deps, job.job_id, "task_running")
    arn = deps.repo.get(job.job_id, full=True).current.task_arn  # type: ignore[union-attr]
    # The STOPPED event never arrives; ECS still knows how the task ended.
    inject(
        "ecs",
        "DescribeTasks",
        lambda p: describe_response(arn, aws.cluster_arn, job.job_id, "STOPPED", 9, exit_code),
    )
    clock.advance(deps.settings.quiet_after_seconds + 1)
    report = reconcile(deps)
    assert report.actions["describe"] == 1 and report.actions["described_applied"] == 1
    drain(aws.retry_queue_url)  # a failure goes through the retry policy
    drain(aws.launch_queue_url)
    stored = deps.repo.get(job.job_id, full=True)
    assert stored is not None and stored.status == status and len(stored.attempts) == attempts
    assert stored.attempts[1].history_entries()[-1]["source"] == "describe"
    if exit_code:
        assert stored.attempts[1].rule == "retryable-exit-2"


def test_task_ecs_forgot_is_marked_lost_and_retried(
    aws: AwsEnv, deps: Deps, clock: FakeClock, stops: list[dict[str, Any]]
) -> None:
    job = submit(deps)
    event(aws, deps, job.job_id, "task_running")
    inject(
        "ecs",
        "DescribeTasks",
        lambda p: {"tasks": [], "failures": [{"arn": p["tasks"][0], "reason": "MISSING"}]},
    )
    clock.advance(deps.settings.quiet_after_seconds + 1)
    assert reconcile(deps).actions["lost"] == 1
    drain(aws.retry_queue_url)
    stored = deps.repo.get(job.job_id, full=True)
    assert stored is not None and stored.attempt == 2
    assert stored.attempts[1].rule == "task-lost" and stored.attempts[1].uncounted
    # and the lost task was stopped before anything relaunched it
    assert [s["task"] for s in stops] == [stored.attempts[1].task_arn]


def test_a_task_describe_tasks_cannot_answer_for_is_not_declared_lost(
    aws: AwsEnv, deps: Deps, clock: FakeClock
) -> None:
    # GIVEN a running job whose DescribeTasks answer is a failure other than MISSING
    job = submit(deps)
    event(aws, deps, job.job_id, "task_running")
    inject(
        "ecs",
        "DescribeTasks",
        lambda p: {"tasks": [], "failures": [{"arn": p["tasks"][0], "reason": "INTERNAL"}]},
    )
    clock.advance(deps.settings.quiet_after_seconds + 1)
    # WHEN the reconciler looks at it
    report = reconcile(deps)
    # THEN nothing is declared lost and the job keeps its attempt
    assert report.actions["lost"] == 0
    stored = deps.repo.get(job.job_id, full=True)
    assert stored is not None and stored.attempt == 1 and stored.status == JobStatus.RUNNING


def test_stuck_pending_job_is_launched_once(aws: AwsEnv, deps: Deps, clock: FakeClock) -> None:
    # Given a job stored by a create_job that died before RunTask
    from jobtracker.usecases.submit import build_job

    job = build_job(submission_of({"definition": "demo"}), deps.settings, clock(), "x")
    deps.repo.create(job)
    clock.advance(deps.settings.decision_grace_seconds + 1)
    assert reconcile(deps).actions["launch"] == 1
    assert status(deps, job.job_id) == JobStatus.STARTING
    clock.advance(5)
    reconcile(deps)
    assert aws.runs_per_token() == {f"{job.job_id}-a1": 1}


def test_lost_hand_off_to_the_decider_is_redone(aws: AwsEnv, deps: Deps, clock: FakeClock) -> None:
    job = submit(deps)
    event(aws, deps, job.job_id, "task_stopped_exit_2")
    boto3.client("sqs").purge_queue(QueueUrl=aws.retry_queue_url)  # the message is lost
    clock.advance(deps.settings.decision_grace_seconds + 1)
    assert reconcile(deps).actions["redecide"] == 1
    drain(aws.retry_queue_url)
    assert deps.repo.get(job.job_id, full=True).attempt == 2  # type: ignore[union-attr]


def test_two_reconcilers_at_once_stop_each_overdue_job_once(
    aws: AwsEnv, deps: Deps, clock: FakeClock, stops: list[dict[str, Any]]
) -> None:
    jobs = [submit(deps, timeout_seconds=5) for _ in range(6)]
    for j in jobs:
        event(
            aws,
            deps,
            j.job_id,
            "task_running",
            startedAt=clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        )
    clock.advance(6)
    threads = [threading.Thread(target=reconcile, args=(deps,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for j in jobs:
        stored = deps.repo.get(j.job_id, full=True)
        assert stored is not None and stored.stop_request == "timeout"
    # a StopTask may be sent twice (it is idempotent), never for another job's task
    assert {s["task"] for s in stops} == {
        deps.repo.get(j.job_id, full=True).current.task_arn for j in jobs
    }  # type: ignore[union-attr]


def test_reconciler_handler_runs_on_real_wiring(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_caches

    monkeypatch.setenv("DECISION_GRACE_SECONDS", "1")
    reset_caches()
    from jobtracker.usecases.submit import build_job
    from jobtracker.wiring import default_deps

    d = default_deps()
    past = datetime.now(UTC) - timedelta(seconds=30)
    job = build_job(submission_of({"definition": "demo"}), d.settings, past, "x")
    d.repo.create(job)
    result = invoke("functions/reconciler", {})
    assert result["actions"] == {"launch": 1} and result["errors"] == 0
    assert d.repo.get(job.job_id, full=True).status == JobStatus.STARTING  # type: ignore[union-attr]


# ---- periodic jobs ------------------------------------------------------------------------------


def tick(name: str, when: str, overlap: str = "Allow", **job: Any) -> ScheduledRun:
    return scheduled_run(
        {
            "schedule": name,
            "scheduled_time": when,
            "overlap": overlap,
            "job": {"definition": "demo", "parameters": {"kind": "succeed"}, **job},
        }
    )


def test_duplicated_schedule_tick_makes_one_job(aws: AwsEnv, deps: Deps) -> None:
    first = run_tick(tick("nightly", "2026-11-24T02:00:00Z"), deps)
    again = run_tick(tick("nightly", "2026-11-24T02:00:00Z"), deps)
    assert first.outcome == Outcome.CREATED and again.outcome == Outcome.DUPLICATE
    assert first.job_id == again.job_id == scheduled_job_id("nightly", "2026-11-24T02:00:00Z")
    assert len(aws.run_task_tokens) == 1
    stored = deps.repo.get(first.job_id, full=True)
    assert stored is not None and stored.schedule_name == "nightly"
    assert stored.scheduled_time == "2026-11-24T02:00:00Z"
    listed = call_api("GET", "/jobs", query="schedule=nightly").body["jobs"]
    assert [j["id"] for j in listed] == [first.job_id] and listed[0]["schedule"] == "nightly"


def test_forbid_skips_while_the_previous_run_is_active(aws: AwsEnv, deps: Deps) -> None:
    first = run_tick(tick("hourly", "2026-11-24T01:00:00Z", "Forbid"), deps)
    skipped = run_tick(tick("hourly", "2026-11-24T02:00:00Z", "Forbid"), deps)
    assert skipped.outcome == Outcome.SKIPPED and deps.repo.get(skipped.job_id, full=True) is None
    event(aws, deps, first.job_id, "task_stopped_success")
    third = run_tick(tick("hourly", "2026-11-24T03:00:00Z", "Forbid"), deps)
    assert third.outcome == Outcome.CREATED


def test_replace_cancels_the_previous_run(
    aws: AwsEnv, deps: Deps, stops: list[dict[str, Any]]
) -> None:
    first = run_tick(tick("feed", "2026-11-24T01:00:00Z", "Replace"), deps)
    event(aws, deps, first.job_id, "task_running")
    second = run_tick(tick("feed", "2026-11-24T02:00:00Z", "Replace"), deps)
    assert second.outcome == Outcome.CREATED and second.replaced == [first.job_id]
    old = deps.repo.get(first.job_id, full=True)
    assert (
        old is not None
        and old.status == JobStatus.CANCELLING
        and "replaced by" in (old.status_reason or "")
    )
    assert len(stops) == 1
    event(aws, deps, first.job_id, "task_stopped_user_initiated")
    assert status(deps, first.job_id) == JobStatus.CANCELLED
    assert status(deps, second.job_id) == JobStatus.STARTING


def test_create_job_takes_a_schedule_tick_and_drops_malformed_input(aws: AwsEnv) -> None:
    good = invoke(
        "functions/create_job",
        tick("demo", "2026-11-24T05:00:00Z").to_dict(),
    )
    assert good["outcome"] == "created"
    assert invoke("functions/create_job", {"schedule": "x"})["outcome"] == "malformed"

"""Integration: the console's routes, GET /schedules, pausing, resuming and running one now
(EventBridge Scheduler on moto) and GET /stats, through the API's handlers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from jobtracker.core.cron import parse
from jobtracker.core.domain import parse_iso
from jobtracker.usecases.periodic import scheduled_job_id
from tests.conftest import AwsEnv, reset_caches
from tests.helpers import call_api, error, inject, invoke, job_event, submitted

GROUP = "jobtracker-test-jobs"
ROLE = "arn:aws:iam::123456789012:role/scheduler"  # the stack's schedule role, in these tests
TICK = {
    "schedule": "nightly",
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "overlap": "Forbid",
    "job": {"definition": "demo", "parameters": {"kind": "succeed"}},
}


def create_schedule(
    name: str, expression: str, group: str | None, tick: Any = TICK, role: str = ROLE
) -> None:
    extra = {"GroupName": group} if group else {}
    boto3.client("scheduler").create_schedule(
        Name=name,
        ScheduleExpression=expression,
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:create_job",
            "RoleArn": role,
            "Input": json.dumps(tick),
        },
        **extra,
    )


@pytest.fixture
def schedules(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("scheduler").create_schedule_group(Name=GROUP)
    monkeypatch.setenv("SCHEDULE_GROUP", GROUP)
    monkeypatch.setenv("SCHEDULE_ROLE_ARN", ROLE)
    reset_caches()
    create_schedule("jt-nightly", "cron(0 2 * * ? *)", GROUP)
    # the reconciler's kind: not in the job schedules' group, so not listed
    create_schedule("jt-reconciler", "rate(1 minute)", None, {})


def test_schedules_lists_the_groups_schedules_with_next_tick_and_last_runs(
    aws: AwsEnv, schedules: None
) -> None:
    # GIVEN a tick of the nightly schedule made a job
    ran = invoke("functions/create_job", {**TICK, "scheduled_time": "2026-11-24T02:00:00Z"})
    # WHEN the schedules are read
    reply = call_api("GET", "/schedules")
    # THEN the group's one schedule is there, with what it runs, its next tick and its run
    assert reply.status == 200, reply.body
    (nightly,) = reply.body["schedules"]
    assert nightly["name"] == "nightly" and nightly["scheduler_name"] == "jt-nightly"
    assert nightly["expression"] == "cron(0 2 * * ? *)" and nightly["timezone"] == "UTC"
    assert nightly["overlap"] == "Forbid" and nightly["definition"] == "demo"
    assert nightly["state"] == "ENABLED" and nightly["problem"] is None
    next_tick = parse_iso(nightly["next_tick"])
    assert next_tick == parse("cron(0 2 * * ? *)").next_after(
        datetime.now(UTC) - timedelta(seconds=5)
    )
    assert [r["id"] for r in nightly["last_runs"]] == [ran["job_id"]]
    assert ran["job_id"] == scheduled_job_id("nightly", "2026-11-24T02:00:00Z")
    assert nightly["links"]["jobs"] == "/jobs?schedule=nightly"


def test_a_schedule_whose_input_is_not_a_tick_is_listed_with_its_problem(
    aws: AwsEnv, schedules: None
) -> None:
    # GIVEN a schedule in the group whose input lacks the job
    tick = {"schedule": "broken", "scheduled_time": "<aws.scheduler.scheduled-time>"}
    create_schedule("jt-broken", "rate(5 minutes)", GROUP, tick)
    # WHEN the schedules are read; THEN it is listed, saying what is wrong, with no runs
    listed = {s["scheduler_name"]: s for s in call_api("GET", "/schedules").body["schedules"]}
    broken = listed["jt-broken"]
    assert broken["overlap"] is None and broken["last_runs"] == []
    assert "job" in broken["problem"], broken["problem"]


def test_schedules_rejects_a_bad_runs_count_naming_the_field(aws: AwsEnv) -> None:
    reply = call_api("GET", "/schedules", query="runs=99")
    assert reply.status == 422
    assert reply.body["error"]["fields"][0]["field"] == "runs"


def scheduler_view(name: str = "jt-nightly") -> dict[str, Any]:
    return dict(boto3.client("scheduler").get_schedule(Name=name, GroupName=GROUP))


def test_pause_disables_the_schedule_in_scheduler_and_keeps_the_rest_of_it(
    aws: AwsEnv, schedules: None
) -> None:
    # GIVEN the nightly schedule, active
    before = scheduler_view()
    # WHEN it is paused by the name its jobs carry
    reply = call_api("POST", "/schedules/nightly/pause")
    # THEN the answer is the schedule, paused, with no next tick
    assert reply.status == 200, reply.body
    assert reply.body["state"] == "DISABLED" and reply.body["next_tick"] is None, reply.body
    # AND Scheduler holds it DISABLED with its expression, time zone, window and target as before
    after = scheduler_view()
    assert after["State"] == "DISABLED"
    kept = ("ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}, (
        "UpdateSchedule lost a field"
    )


def test_resume_enables_a_paused_schedule_by_its_scheduler_name_with_its_next_tick(
    aws: AwsEnv, schedules: None
) -> None:
    # GIVEN the nightly schedule, paused
    assert call_api("POST", "/schedules/nightly/pause").status == 200
    # WHEN it is resumed by Scheduler's name for it
    reply = call_api("POST", "/schedules/jt-nightly/resume")
    # THEN it is ENABLED there and its next tick is its expression's next
    assert reply.status == 200, reply.body
    assert scheduler_view()["State"] == "ENABLED"
    assert reply.body["state"] == "ENABLED" and reply.body["next_tick"], reply.body


def test_pausing_an_unknown_schedule_answers_404_naming_it(aws: AwsEnv, schedules: None) -> None:
    reply = call_api("POST", "/schedules/weekly/pause")
    assert reply.status == 404, reply.body
    assert reply.body["error"]["message"] == "schedule weekly not found", reply.body


def test_a_schedule_with_a_role_of_its_own_answers_409_and_is_left_as_it_is(
    aws: AwsEnv, schedules: None
) -> None:
    # GIVEN a schedule in the group made with another role than the stack's
    create_schedule("jt-own", "rate(1 hour)", GROUP, {**TICK, "schedule": "own"}, role="arn:x")
    # WHEN it is paused THEN 409 says why, and Scheduler still holds it ENABLED
    reply = call_api("POST", "/schedules/own/pause")
    assert reply.status == 409, reply.body
    assert "not as the stack's schedule role" in reply.body["error"]["message"], reply.body
    assert scheduler_view("jt-own")["State"] == "ENABLED"


def test_run_now_makes_and_launches_the_ticks_job_through_create_job(
    aws: AwsEnv, schedules: None
) -> None:
    # GIVEN the nightly schedule (overlap Forbid), no run yet
    # WHEN it is run now
    reply = call_api("POST", "/schedules/nightly/run")
    # THEN create_job answers 201 with the tick's job, launched, carrying the schedule's name
    assert reply.status == 201, reply.body
    job = reply.body
    assert job["schedule"] == "nightly" and job["definition"] == "demo", job
    assert job["id"] == scheduled_job_id("nightly", job["scheduled_time"]), job
    (attempt,) = job["attempts"]
    assert attempt["task_arn"].startswith("arn:aws:ecs:"), "run now must launch the job's task"


def test_run_now_while_a_forbid_schedules_run_is_active_answers_409_naming_it(
    aws: AwsEnv, schedules: None
) -> None:
    # GIVEN an earlier tick of the nightly schedule (Forbid) whose job is still active
    earlier = invoke("functions/create_job", {**TICK, "scheduled_time": "2026-11-24T02:00:00Z"})
    assert earlier["outcome"] == "created", earlier
    # WHEN it is run now
    reply = call_api("POST", "/schedules/nightly/run")
    # THEN 409 names the active run, and no job was made
    assert reply.status == 409, reply.body
    assert earlier["job_id"] in reply.body["error"]["message"], reply.body
    runs = call_api("GET", "/jobs", query="schedule=nightly").body["jobs"]
    assert [r["id"] for r in runs] == [earlier["job_id"]], "a skipped run must make no job"


def test_pausing_a_schedule_deleted_meanwhile_is_not_found_and_one_changed_is_a_conflict(
    aws: AwsEnv, schedules: None
) -> None:
    from jobtracker.adapters.schedules import SchedulerSchedules
    from jobtracker.core.errors import Conflict, NotFound

    # GIVEN the nightly schedule as the API listed it
    source = SchedulerSchedules(GROUP)
    (listed,) = source.schedules()
    # WHEN its role changes before the update THEN the update is refused, nothing sent
    other = replace(listed, role_arn="arn:aws:iam::123456789012:role/before")
    with pytest.raises(Conflict, match="changed meanwhile"):
        source.set_state(other, "DISABLED")
    assert scheduler_view()["State"] == "ENABLED"
    # AND WHEN it was deleted before the update THEN it is not found (a 404, not a 500)
    boto3.client("scheduler").delete_schedule(Name="jt-nightly", GroupName=GROUP)
    with pytest.raises(NotFound, match="schedule jt-nightly not found"):
        source.set_state(listed, "DISABLED")


def test_run_now_of_a_paused_schedule_runs_it_and_leaves_it_paused(
    aws: AwsEnv, schedules: None
) -> None:
    assert call_api("POST", "/schedules/nightly/pause").status == 200
    reply = call_api("POST", "/schedules/nightly/run")
    assert reply.status == 201, reply.body
    assert scheduler_view()["State"] == "DISABLED"


def test_stats_counts_recent_jobs_by_status_and_definition_and_lists_waiting_ones(
    aws: AwsEnv,
) -> None:
    # GIVEN a job that succeeded, one that is starting, and one waiting for launch capacity
    done = submitted()
    for fixture in ("task_running", "task_stopped_success"):
        invoke("functions/on_task_state", job_event(done, fixture, aws.cluster_arn))
    submitted()
    remove = inject("ecs", "RunTask", lambda p: error("ThrottlingException", "Rate exceeded"))
    waiting = call_api("POST", "/jobs", {"definition": "demo"}).body
    remove()
    # WHEN the stats are read
    reply = call_api("GET", "/stats", query="hours=2")
    # THEN the counts, the definition's success rate and durations, and the queue are there
    assert reply.status == 200, reply.body
    stats = reply.body
    assert stats["totals"] == {"SUCCEEDED": 1, "STARTING": 1, "PENDING": 1}
    assert sum(sum(b["counts"].values()) for b in stats["buckets"]) == 3
    assert len(stats["buckets"]) == 24 and stats["bucket_seconds"] == 300
    (demo,) = stats["definitions"]
    assert (demo["jobs"], demo["succeeded"], demo["verdicts"]) == (3, 1, 1)
    assert demo["success_rate"] == 1.0 and demo["p50_seconds"] is not None
    assert [w["id"] for w in stats["waiting"]] == [waiting["id"]]
    assert "Rate exceeded" in stats["waiting"][0]["reason"]
    assert stats["truncated"] is False


def test_stats_rejects_a_window_out_of_range_naming_the_field(aws: AwsEnv) -> None:
    reply = call_api("GET", "/stats", query="hours=0")
    assert reply.status == 422
    assert reply.body["error"]["fields"][0]["field"] == "hours"


def test_definitions_lists_the_deployments_job_definitions_without_their_arns(
    aws: AwsEnv,
) -> None:
    # GIVEN the deployment's job definitions; WHEN the console asks for them
    reply = call_api("GET", "/definitions")
    # THEN each is listed by name with what a submitter chooses by
    assert reply.status == 200, reply.body
    names = [d["name"] for d in reply.body["definitions"]]
    assert "demo" in names and names == sorted(names), names
    demo = next(d for d in reply.body["definitions"] if d["name"] == "demo")
    assert set(demo) == {
        "name",
        "cpu",
        "memory",
        "architecture",
        "allow_command_override",
        "max_running",
        "timeout_seconds",
        "links",
    }, demo
    # AND nothing of how the deployment runs it (task definition, role, network) is shown
    text = json.dumps(reply.body)
    assert "arn:aws" not in text and "subnet" not in text, text

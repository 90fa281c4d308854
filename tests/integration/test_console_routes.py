"""Integration: the console's routes, GET /schedules (EventBridge Scheduler on moto) and
GET /stats, through the API handler."""

from __future__ import annotations

import json
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
TICK = {
    "schedule": "nightly",
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "overlap": "Forbid",
    "job": {"definition": "demo", "parameters": {"kind": "succeed"}},
}


def create_schedule(name: str, expression: str, group: str | None, tick: Any = TICK) -> None:
    extra = {"GroupName": group} if group else {}
    boto3.client("scheduler").create_schedule(
        Name=name,
        ScheduleExpression=expression,
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:create_job",
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": json.dumps(tick),
        },
        **extra,
    )


@pytest.fixture
def schedules(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("scheduler").create_schedule_group(Name=GROUP)
    monkeypatch.setenv("SCHEDULE_GROUP", GROUP)
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

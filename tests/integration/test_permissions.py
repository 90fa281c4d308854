"""Integration: every DynamoDB and EventBridge Scheduler operation a function performs is allowed
by its own policy in template.yaml (moto does not enforce IAM, so a missing permission would only
show on AWS)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from jobtracker_local.template import load
from tests.conftest import AwsEnv, reset_caches
from tests.helpers import call_api, configured_queue, drain, invoke, job_event, submitted

TEMPLATE = load()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def function_of(code_uri: str) -> str:
    for name, res in RESOURCES.items():
        if res["Type"] == "AWS::Serverless::Function" and res["Properties"]["CodeUri"].rstrip(
            "/"
        ) == code_uri.rstrip("/"):
            return name
    raise KeyError(code_uri)


SERVICES = ("dynamodb", "scheduler")


def allowed(function: str) -> set[tuple[str, str]]:
    """(action, "table" | "index/<name>" | "index/*") the function's own statements allow (a
    scheduler action's resource is held to the job schedules' group by tests/infra)."""
    out: set[tuple[str, str]] = set()
    for policy in RESOURCES[function]["Properties"].get("Policies", []):
        for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resource = str(st["Resource"])
            where = (
                "index/" + resource.rsplit("/index/", 1)[1].rstrip("'}")
                if "/index/" in resource
                else "table"
            )
            out |= {(a, where) for a in actions if a.startswith("dynamodb:")}
            out |= {(a, "schedule") for a in actions if a.startswith("scheduler:")}
    return out


class Recorder:
    """The DynamoDB operations (and the index each query used) and the Scheduler operations,
    per function."""

    def __init__(self) -> None:
        from tests.helpers import aws_client

        self.current = "?"
        self.seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for service in SERVICES:
            events = aws_client(service).meta.events
            events.register(f"provide-client-params.{service}.*", self._call)

    def _call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        if service == "scheduler":
            self.seen[self.current].add((f"scheduler:{model.name}", "schedule"))
            return
        where = f"index/{params['IndexName']}" if params.get("IndexName") else "table"
        self.seen[self.current].add((f"dynamodb:{model.name}", where))

    def run(self, code_uri: str, action: Any) -> Any:
        self.current = function_of(code_uri)
        try:
            return action()
        finally:
            self.current = "?"


def job_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job schedule in the stack's group, made with the stack's schedule role."""
    role = "arn:aws:iam::123456789012:role/stack-ScheduleRole"
    scheduler = boto3.client("scheduler")
    scheduler.create_schedule_group(Name="stack-jobs")
    tick = {"schedule": "hourly", "scheduled_time": "<aws.scheduler.scheduled-time>"}
    scheduler.create_schedule(
        Name="stack-hourly",
        GroupName="stack-jobs",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:create_job",
            "RoleArn": role,
            "Input": json.dumps({**tick, "job": {"definition": "demo"}}),
        },
    )
    monkeypatch.setenv("SCHEDULE_GROUP", "stack-jobs")
    monkeypatch.setenv("SCHEDULE_ROLE_ARN", role)


def test_every_dynamodb_and_scheduler_call_a_function_makes_is_in_its_policy(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    dlq = configured_queue(monkeypatch, "events-dlq", "EVENT_DLQ_URL")
    job_schedule(monkeypatch)
    reset_caches()  # the schedule group's settings; the recorder hooks the new clients
    rec = Recorder()
    # GIVEN each function doing its work: submit, track, decide and relaunch, read, cancel,
    # schedule, reconcile
    job = rec.run("functions/create_job", lambda: submitted())
    retried = rec.run(
        "functions/create_job",
        lambda: submitted({"definition": "demo", "retry": {"backoff": {"base_seconds": 0}}}),
    )
    again = rec.run(
        "functions/create_job",
        lambda: call_api("POST", "/jobs", {"definition": "demo"}, {"Idempotency-Key": "k"}),
    )
    rec.run(
        "functions/create_job",
        lambda: call_api("POST", "/jobs", {"definition": "demo"}, {"Idempotency-Key": "k"}),
    )
    for fixture in ("task_running", "task_stopped_success"):
        rec.run(
            "functions/on_task_state",
            lambda f=fixture: invoke(  # type: ignore[misc]
                "functions/on_task_state", job_event(job, f, aws.cluster_arn)
            ),
        )
    rec.run(
        "functions/on_task_state",
        lambda: invoke(
            "functions/on_task_state", job_event(retried, "task_stopped_exit_2", aws.cluster_arn)
        ),
    )
    rec.run("functions/retry_decider", lambda: drain(aws.retry_queue_url))
    boto3.client("sqs").purge_queue(QueueUrl=aws.launch_queue_url)  # moto: delays in real time
    from jobtracker.usecases.launch import handle_launch_message

    rec.run("functions/retry_decider", lambda: handle_launch_message(retried["id"], 2))
    for query in ("", "status=SUCCEEDED", "status=RUNNING", "definition=demo", "schedule=s"):
        rec.run("functions/api", lambda q=query: call_api("GET", "/jobs", query=q))  # type: ignore[misc]
    rec.run("functions/api", lambda: call_api("GET", f"/jobs/{retried['id']}"))
    rec.run("functions/api", lambda: call_api("POST", f"/jobs/{again.body['id']}/cancel"))
    tick = {
        "schedule": "nightly",
        "scheduled_time": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "overlap": "Replace",
        "job": {"definition": "demo"},
    }
    rec.run("functions/create_job", lambda: invoke("functions/create_job", tick))
    rec.run("functions/create_job", lambda: invoke("functions/create_job", tick))
    rec.run("functions/reconciler", lambda: invoke("functions/reconciler", {}))
    for action in ("pause", "resume"):
        rec.run("functions/api", lambda a=action: call_api("POST", f"/schedules/hourly/{a}"))  # type: ignore[misc]
    rec.run("functions/api", lambda: call_api("GET", "/schedules"))
    ran = rec.run("functions/create_job", lambda: call_api("POST", "/schedules/hourly/run"))
    assert ran.status == 201, ran.body
    late = rec.run("functions/create_job", lambda: submitted())
    for body in (
        job_event(late, "task_stopped_success", aws.cluster_arn),
        {**tick, "scheduled_time": datetime(2026, 1, 2, tzinfo=UTC).isoformat()},
    ):
        boto3.client("sqs").send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    assert rec.run("functions/redrive", lambda: invoke("functions/redrive", {}))["redriven"] == 2
    assert ("scheduler:UpdateSchedule", "schedule") in rec.seen["ApiFunction"], "pause recorded"
    assert ("scheduler:GetSchedule", "schedule") in rec.seen["CreateJobFunction"], "run recorded"
    # THEN each operation is allowed by that function's own statements
    assert set(rec.seen) >= {
        "CreateJobFunction",
        "OnTaskStateFunction",
        "RetryDeciderFunction",
        "ApiFunction",
        "ReconcilerFunction",
        "RedriveFunction",
    }, sorted(rec.seen)
    for function, calls in rec.seen.items():
        grants = allowed(function)
        for action, where in calls:
            ok = (action, where) in grants or (
                where.startswith("index/") and (action, "index/*") in grants
            )
            assert ok, f"{function} calls {action} on {where}; its policy allows {sorted(grants)}"

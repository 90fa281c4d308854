"""Integration: every DynamoDB operation a function performs is allowed by its own policy in
template.yaml (moto does not enforce IAM, so a missing permission would only show on AWS)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from jobtracker_local.template import load
from tests.conftest import AwsEnv
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


def allowed(function: str) -> set[tuple[str, str]]:
    """(action, "table" | "index/<name>" | "index/*") the function's own statements allow."""
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
    return out


class Recorder:
    """The DynamoDB operations (and the index each query used) per function."""

    def __init__(self) -> None:
        from tests.helpers import aws_client

        self.current = "?"
        self.seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
        aws_client("dynamodb").meta.events.register("provide-client-params.dynamodb.*", self._call)

    def _call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        where = f"index/{params['IndexName']}" if params.get("IndexName") else "table"
        self.seen[self.current].add((f"dynamodb:{model.name}", where))

    def run(self, code_uri: str, action: Any) -> Any:
        self.current = function_of(code_uri)
        try:
            return action()
        finally:
            self.current = "?"


def test_every_dynamodb_call_a_function_makes_is_in_its_policy(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    dlq = configured_queue(monkeypatch, "events-dlq", "EVENT_DLQ_URL")
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
    late = rec.run("functions/create_job", lambda: submitted())
    for body in (
        job_event(late, "task_stopped_success", aws.cluster_arn),
        {**tick, "scheduled_time": datetime(2026, 1, 2, tzinfo=UTC).isoformat()},
    ):
        boto3.client("sqs").send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    assert rec.run("functions/redrive", lambda: invoke("functions/redrive", {}))["redriven"] == 2
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

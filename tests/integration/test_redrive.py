"""Integration: nothing handed to the event dead-letter queue is lost; RedriveFunction hands
ECS events (both shapes) and schedule ticks back to their logic."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.conftest import AwsEnv
from tests.helpers import call_api, configured_queue, invoke, job_event, submitted


@pytest.fixture
def dlq(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> str:
    return configured_queue(monkeypatch, "events-dlq", "EVENT_DLQ_URL")


def dead_letter(url: str, body: Any) -> None:
    boto3.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(body))


def as_lambda_destination(payload: Any) -> dict[str, Any]:
    """What Lambda's on-failure destination sends after an asynchronous invocation gave up."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-24T10:00:00.000Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:on-task-state:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "DynamoDB was down"},
    }


def test_dead_lettered_events_and_ticks_are_handed_back(aws: AwsEnv, dlq: str) -> None:
    # GIVEN a job whose RUNNING event EventBridge could not deliver (the event itself), whose
    # STOPPED event on_task_state kept failing on (wrapped by Lambda), a schedule tick that
    # failed, and a message of no known shape
    job = submitted()
    dead_letter(dlq, job_event(job, "task_running", aws.cluster_arn))
    dead_letter(dlq, as_lambda_destination(job_event(job, "task_stopped_success", aws.cluster_arn)))
    tick = {
        "schedule": "nightly",
        "scheduled_time": "2026-11-24T02:00:00Z",
        "job": {"definition": "demo"},
    }
    dead_letter(dlq, as_lambda_destination(tick))
    dead_letter(dlq, {"what": "is this"})
    # WHEN the redrive runs
    report = invoke("functions/redrive", {})
    # THEN the job ended as its events say, the tick made its job, and only the stranger is left
    assert report["redriven"] == 3 and report["unknown"] == 1, report
    assert call_api("GET", f"/jobs/{job['id']}").body["status"] == "SUCCEEDED"
    listed = call_api("GET", "/jobs", query="schedule=nightly").body["jobs"]
    assert len(listed) == 1
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])[
        "Attributes"
    ]
    left = int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )
    assert left == 1, attrs


def test_a_redrive_run_twice_changes_nothing_more(aws: AwsEnv, dlq: str) -> None:
    job = submitted()
    event = job_event(job, "task_stopped_success", aws.cluster_arn)
    dead_letter(dlq, event)
    dead_letter(dlq, as_lambda_destination(event))  # delivered twice: a duplicate
    first = invoke("functions/redrive", {})
    assert first["redriven"] == 2 and first["outcomes"] == {"applied": 1, "duplicate": 1}
    assert invoke("functions/redrive", {})["redriven"] == 0

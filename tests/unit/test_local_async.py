"""Unit: the local stack invokes rule targets as Lambda invokes asynchronously: three tries,
then the function's on-failure destination gets the event (wrapped as Lambda wraps it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobtracker_local.stack import ASYNC_TRIES, LocalStack
from jobtracker_local.template import Function


def failing(function: str, event: dict[str, Any]) -> Any:
    raise RuntimeError("DynamoDB was down")


def test_an_event_its_function_keeps_failing_on_reaches_the_on_failure_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        rule_queue = sqs.create_queue(QueueName="rule", Attributes={"VisibilityTimeout": "0"})
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        # GIVEN a function with an on-failure destination that always fails
        stack = LocalStack(tmp_path)
        stack.sqs_client = sqs
        stack.queue_urls = {dlq_arn: dlq}
        stack.functions = {
            "OnTaskState": Function("OnTaskState", "x", "app.handler", {}, {}, 3, dlq_arn)
        }
        monkeypatch.setattr(stack, "invoke", failing)
        event = {"detail-type": "ECS Task State Change", "id": "e-1"}
        sqs.send_message(QueueUrl=rule_queue["QueueUrl"], MessageBody=json.dumps(event))
        # WHEN the rule's deliveries are drained as often as Lambda would try
        for _ in range(ASYNC_TRIES):
            stack._drain_rule_queue(rule_queue["QueueUrl"], "OnTaskState")
        # THEN the event left the rule queue for the destination, wrapped as Lambda wraps it
        left = sqs.receive_message(QueueUrl=rule_queue["QueueUrl"]).get("Messages", [])
        assert left == []
        [dead] = sqs.receive_message(QueueUrl=dlq)["Messages"]
        record = json.loads(dead["Body"])
        assert record["requestPayload"] == event
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert "DynamoDB was down" in record["responsePayload"]["errorMessage"]

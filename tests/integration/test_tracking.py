"""Integration: on_task_state, retry_decider and notifier handlers on moto."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from tests.conftest import AwsEnv, load_event
from tests.helpers import (
    CallCounter,
    call_api,
    drain,
    ecs_event,
    handed_off,
    invoke,
    job_event,
    submitted,
)


def event(
    aws: AwsEnv, job: dict[str, Any], name: str, attempt: int = 1, version: int | None = None
) -> dict[str, Any]:
    return job_event(job, name, aws.cluster_arn, attempt, version)


def on_task_state(ev: dict[str, Any]) -> str:
    return str(invoke("functions/on_task_state", ev)["result"])


def job_of(job_id: str) -> dict[str, Any]:
    reply = call_api("GET", f"/jobs/{job_id}")
    assert reply.status == 200
    return reply.body  # type: ignore[no-any-return]


def test_non_terminal_event_costs_one_write_and_a_duplicate_a_rejected_write_and_a_read(
    aws: AwsEnv,
) -> None:
    # Given a launched job and an AWS call counter
    job = submitted()
    counter = CallCounter()
    # When RUNNING arrives
    assert on_task_state(event(aws, job, "task_running")) == "applied"
    # Then exactly one DynamoDB write and no read
    assert counter.reset() == ["dynamodb.UpdateItem"]
    assert job_of(job["id"])["status"] == "RUNNING"
    counter.reset()
    # When the same event is delivered again
    assert on_task_state(event(aws, job, "task_running")) == "duplicate"
    # Then it costs one (rejected) conditional write and the one read that tells why (pynamodb
    # cannot return the refused item with the refusal)
    assert counter.reset() == ["dynamodb.UpdateItem", "dynamodb.GetItem"]
    counter.close()


def test_older_event_after_newer_is_kept_in_history_only(aws: AwsEnv) -> None:
    job = submitted()
    on_task_state(event(aws, job, "task_running"))
    assert on_task_state(event(aws, job, "task_pending")) == "stale"
    stored = job_of(job["id"])
    assert stored["status"] == "RUNNING"
    attempt = stored["attempts"][0]
    assert attempt["status"] == "RUNNING"
    assert [(h["status"], h["version"]) for h in attempt["history"]] == [
        ("PENDING", 2),
        ("RUNNING", 3),
    ]


def test_success_ends_job_and_records_containers(aws: AwsEnv) -> None:
    job = submitted()
    for name in ("task_pending", "task_running", "task_stopped_success"):
        assert on_task_state(event(aws, job, name)) == "applied"
    stored = job_of(job["id"])
    assert stored["status"] == "SUCCEEDED"
    attempt = stored["attempts"][0]
    assert attempt["outcome"] == "succeeded"
    assert attempt["containers"] == [{"name": "worker", "exit_code": 0, "reason": None}]
    assert attempt["stop_code"] == "EssentialContainerExited"
    assert attempt["started_at"] and attempt["stopped_at"]
    assert aws.sent_to(aws.retry_queue_url) == []


def test_retryable_failure_is_decided_relaunched_and_tracked(aws: AwsEnv) -> None:
    # Given a job whose first attempt exits 2 (retryable)
    job = submitted({"definition": "demo", "retry": {"backoff": {"base_seconds": 0}}})
    on_task_state(event(aws, job, "task_running"))
    assert on_task_state(event(aws, job, "task_stopped_exit_2")) == "applied"
    # Then the attempt is handed to the decider
    assert [handed_off(b) for b, _ in aws.sent_to(aws.retry_queue_url)] == [
        {"kind": "decide", "job_id": job["id"], "attempt": 1}
    ]
    # When the decider runs (through SQS)
    assert [handed_off(b) for b in drain(aws.retry_queue_url)] == [
        {"kind": "decide", "job_id": job["id"], "attempt": 1}
    ]
    stored = job_of(job["id"])
    assert stored["status"] == "PENDING" and stored["attempt"] == 2
    assert stored["attempts"][0]["outcome"] == "retry"
    assert stored["attempts"][0]["rule"] == "retryable-exit-2"
    # And the launch queue launches attempt 2 with the next client token
    assert drain(aws.launch_queue_url) == [{"kind": "launch", "job_id": job["id"], "attempt": 2}]
    stored = job_of(job["id"])
    assert stored["status"] == "STARTING"
    assert aws.runs_per_token() == {f"{job['id']}-a1": 1, f"{job['id']}-a2": 1}
    # And a late event of attempt 1 never changes the job
    # (version 4 is older than the STOPPED it already holds, version 6: nothing to change)
    late = on_task_state(event(aws, job, "task_running", version=4))
    assert late == "stale", late
    assert job_of(job["id"])["status"] == "STARTING"
    # When attempt 2 succeeds
    on_task_state(event(aws, stored, "task_stopped_success", attempt=2))
    assert job_of(job["id"])["status"] == "SUCCEEDED"


def test_fatal_failure_fails_without_retry(aws: AwsEnv) -> None:
    job = submitted()
    on_task_state(event(aws, job, "task_stopped_oom"))
    drain(aws.retry_queue_url)
    stored = job_of(job["id"])
    assert stored["status"] == "FAILED"
    assert "OutOfMemoryError" in stored["status_reason"]
    assert stored["attempts"][0]["rule"] == "oom"
    assert aws.sent_to(aws.launch_queue_url) == []


def test_spot_notice_recorded_then_uncounted_retry(aws: AwsEnv) -> None:
    job = submitted({"definition": "demo", "retry": {"backoff": {"base_seconds": 0}}})
    on_task_state(event(aws, job, "task_running"))
    on_task_state(event(aws, job, "spot_interruption_notice"))
    assert job_of(job["id"])["attempts"][0]["spot_interruption_at"]
    on_task_state(event(aws, job, "task_stopped_spot"))
    drain(aws.retry_queue_url)
    stored = job_of(job["id"])
    assert stored["attempt"] == 2 and stored["attempts"][0]["counted"] is False


def test_malformed_and_foreign_events_are_dropped_without_error(aws: AwsEnv) -> None:
    for name in ("malformed_no_version", "malformed_version_type", "malformed_detail"):
        assert on_task_state(load_event(name)) == "malformed"
    assert on_task_state(load_event("foreign_service_task")) == "foreign"
    assert (
        on_task_state(ecs_event("task_running", "job-unknown", cluster_arn=aws.cluster_arn))
        == "unknown"
    )


def test_malformed_work_message_is_dropped_not_retried(aws: AwsEnv) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=aws.retry_queue_url, MessageBody="not json")
    sqs.send_message(QueueUrl=aws.retry_queue_url, MessageBody=json.dumps({"kind": "explode"}))
    got = sqs.receive_message(QueueUrl=aws.retry_queue_url, MaxNumberOfMessages=10)
    from tests.helpers import sqs_event

    ev = sqs_event(aws.retry_queue_url, [{}, {}])
    for record, m in zip(ev["Records"], got["Messages"], strict=True):
        record["body"] = m["Body"]
    result = invoke("functions/retry_decider", ev)
    assert result["batchItemFailures"] == []


def test_decider_failure_is_reported_per_message(aws: AwsEnv) -> None:
    # Given one good message and one whose processing fails (DynamoDB down for that job)
    job = submitted()
    on_task_state(event(aws, job, "task_stopped_exit_1"))
    from tests.helpers import aws_client, sqs_event

    client = aws_client("dynamodb")
    fail_once: dict[str, int] = {"n": 0}

    def before_get(**kw: Any) -> Any:
        fail_once["n"] += 1
        if fail_once["n"] == 1:
            raise RuntimeError("simulated DynamoDB outage")
        return None

    client.meta.events.register("before-call.dynamodb.GetItem", before_get)
    ev = sqs_event(
        aws.retry_queue_url,
        [
            {"kind": "decide", "job_id": job["id"], "attempt": 1},
            {"kind": "decide", "job_id": job["id"], "attempt": 1},
        ],
    )
    result = invoke("functions/retry_decider", ev)
    client.meta.events.unregister("before-call.dynamodb.GetItem", before_get)
    # Then only the failed record is reported for redelivery, and the other was decided
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == ["m-0"]
    assert job_of(job["id"])["status"] == "FAILED"


def run_notifier_on_a_successful_job(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch, notify: str | None
) -> tuple[list[Any], list[Any]]:
    """A job runs to success and the notifier handles the table's stream; returns what reached
    the job bus and what reached the SNS subscription for SUCCEEDED."""
    # Given subscribers on the job bus (captured through an SQS target) and the SNS topic
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    sns = boto3.client("sns")
    capture = sqs.create_queue(QueueName="captured")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(Name="all-jobs", EventPattern=json.dumps({"source": ["jobtracker"]}))
    events.put_targets(Rule="all-jobs", Targets=[{"Id": "q", "Arn": capture_arn}])
    topic = sns.create_topic(Name="jobs")["TopicArn"]
    terminal = sqs.create_queue(QueueName="terminal")["QueueUrl"]
    terminal_arn = sqs.get_queue_attributes(QueueUrl=terminal, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=terminal_arn,
        Attributes={
            "FilterPolicy": json.dumps({"status": ["SUCCEEDED"]}),
            "RawMessageDelivery": "true",
        },
    )
    from tests.conftest import reset_caches

    monkeypatch.setenv("JOB_TOPIC_ARN", topic)
    if notify is not None:
        monkeypatch.setenv("NOTIFY_STATUSES", notify)
    reset_caches()
    ddb = boto3.client("dynamodb")  # the table has its stream on, as the template declares
    # When a job runs to success
    job = submitted()
    on_task_state(event(aws, job, "task_running"))
    on_task_state(event(aws, job, "task_running"))  # duplicate: no extra notification
    on_task_state(event(aws, job, "task_stopped_success"))
    # And the notifier handles the table's stream
    stream_arn = ddb.describe_table(TableName=aws.table)["Table"]["LatestStreamArn"]
    # botocore now calls <account>.streams-ddb…, an address moto does not route yet
    streams = boto3.client(
        "dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
    )
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0][
        "ShardId"
    ]
    it = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=it)["Records"]
    for r in records:
        r["eventSourceARN"] = stream_arn
    result = invoke("functions/notifier", {"Records": records})
    assert result["batchItemFailures"] == []
    time.sleep(0.1)
    got = sqs.receive_message(QueueUrl=capture, MaxNumberOfMessages=10).get("Messages", [])
    sns_got = sqs.receive_message(QueueUrl=terminal, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got], [json.loads(m["Body"]) for m in sns_got]


def test_notifier_publishes_every_status_change_when_asked(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    published, sns_got = run_notifier_on_a_successful_job(aws, monkeypatch, "ALL")
    # Then every status change was published once, in order, and only SUCCEEDED reached SNS
    assert [p["detail"]["status"] for p in published] == [
        "PENDING",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
    ]
    assert all(
        p["detail-type"] == "Job State Change" and p["source"] == "jobtracker" for p in published
    )
    assert published[-1]["detail"]["previous_status"] == "RUNNING"
    assert [m["status"] for m in sns_got] == ["SUCCEEDED"]


def test_notifier_publishes_terminal_states_by_default(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    published, sns_got = run_notifier_on_a_successful_job(aws, monkeypatch, None)
    assert [p["detail"]["status"] for p in published] == ["SUCCEEDED"]
    assert published[0]["detail"]["previous_status"] == "RUNNING"
    assert [m["status"] for m in sns_got] == ["SUCCEEDED"]

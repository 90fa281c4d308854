"""Integration: a job change the bus or SNS refuses is deferred to the notify retry queue and
published from there; the stream never waits on it (its records live only 24 hours)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from jobtracker.adapters.notify import notify_deferred, notify_stream_record
from jobtracker.adapters.records import job_record
from jobtracker.core.domain import JobStatus
from jobtracker.core.submission import Submission
from jobtracker.usecases.submit import build_job
from jobtracker.wiring import default_deps
from tests.conftest import AwsEnv
from tests.helpers import configured_queue, invoke, sqs_event


class Refusing:
    def publish(self, detail: dict[str, Any]) -> None:
        raise RuntimeError("PutEvents failed: ThrottlingException")


class Recording:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, detail: dict[str, Any]) -> None:
        self.published.append(detail)


@pytest.fixture
def retry_queue(aws: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> str:
    return configured_queue(monkeypatch, "notify-retry", "NOTIFY_RETRY_QUEUE_URL")


def finished_record() -> dict[str, Any]:
    """A stream record of a job going RUNNING -> SUCCEEDED."""
    deps = default_deps()
    job = build_job(Submission(definition="demo"), deps.settings, deps.clock(), "me")
    job.status = JobStatus.RUNNING
    old = job_record(job).serialize()
    job.status = JobStatus.SUCCEEDED
    new = job_record(job).serialize()
    return {"eventName": "MODIFY", "dynamodb": {"NewImage": new, "OldImage": old}}


def queued(url: str) -> list[dict[str, Any]]:
    got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def test_a_change_the_bus_refuses_is_deferred_then_published(aws: AwsEnv, retry_queue: str) -> None:
    # GIVEN a bus that refuses WHEN the stream handler meets a job's success
    outcome = notify_stream_record(finished_record(), publisher=Refusing())
    # THEN the stream moves on, and the change waits on the retry queue
    assert outcome == "deferred"
    [deferred] = queued(retry_queue)
    assert deferred["kind"] == "notify" and deferred["detail"]["status"] == "SUCCEEDED"
    assert deferred["detail"]["previous_status"] == "RUNNING"
    # AND once the bus accepts again, it is published from there, as it was
    bus = Recording()
    assert notify_deferred(json.dumps(deferred), publisher=bus) == "SUCCEEDED"
    assert bus.published == [deferred["detail"]]


def test_the_notifier_handler_takes_deferred_changes_from_its_queue(
    aws: AwsEnv, retry_queue: str
) -> None:
    notify_stream_record(finished_record(), publisher=Refusing())
    event = sqs_event(retry_queue, queued(retry_queue))
    result = invoke("functions/notifier", event)
    assert result["batchItemFailures"] == []


def test_without_a_retry_queue_a_refused_change_fails_the_record(aws: AwsEnv) -> None:
    with pytest.raises(RuntimeError, match="PutEvents failed"):
        notify_stream_record(finished_record(), publisher=Refusing())

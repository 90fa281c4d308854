"""Partial batch responses: what Lambda redelivers when some records of a batch fail (queues
through Powertools' BatchProcessor, the table's stream through its own ordered loop)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from jobtracker.edge.batch import StreamBatchFailed, queue_batch, stream_batch


def _sqs(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m-{i}", "body": b, "eventSource": "aws:sqs"}
            for i, b in enumerate(bodies)
        ]
    }


def _stream(count: int) -> dict[str, Any]:
    return {"Records": [{"dynamodb": {"SequenceNumber": str(100 + i)}} for i in range(count)]}


class FailOn:
    """A handler that fails on the given keys and remembers what it was handed."""

    def __init__(self, *bad: str) -> None:
        self.bad = set(bad)
        self.seen: list[str] = []

    def __call__(self, item: Any) -> None:
        key = item if isinstance(item, str) else item["dynamodb"]["SequenceNumber"]
        self.seen.append(key)
        if key in self.bad:
            raise ValueError(f"bad {key}")


def test_a_queue_batch_reports_only_the_records_that_failed() -> None:
    # GIVEN three queued messages, the middle one failing
    handler = FailOn("b")
    # WHEN the batch is handled
    result = queue_batch(_sqs("a", "b", "c"), handler)
    # THEN only the failed message is reported, and every message was tried
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}, result
    assert handler.seen == ["a", "b", "c"], "a queue's records are independent: all are tried"


def test_a_failed_queue_record_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a batch with one failing message, and the metric counter watched
    counted: list[str] = []
    monkeypatch.setattr("jobtracker.edge.batch.count", lambda name, n=1: counted.append(name))
    # WHEN it is handled THEN the failure is counted once
    queue_batch(_sqs("a", "b"), FailOn("a"))
    assert counted == ["BatchRecordsFailed"], counted


def test_a_queue_batch_whose_every_record_fails_fails_the_invocation() -> None:
    # WHEN two messages both fail THEN the invocation raises (Lambda's error metric counts it)
    with pytest.raises(BatchProcessingError):
        queue_batch(_sqs("a", "b"), FailOn("a", "b"))


def test_a_queue_batch_that_succeeds_reports_nothing() -> None:
    assert queue_batch(_sqs("a", "b"), FailOn()) == {"batchItemFailures": []}


def test_a_stream_batch_stops_at_its_first_failure() -> None:
    # GIVEN four stream records, the second failing
    handler = FailOn("101")
    # WHEN the batch is handled
    result = stream_batch(_stream(4), handler)
    # THEN Lambda is told to resume from that record, and the later ones wait for it
    assert result == {"batchItemFailures": [{"itemIdentifier": "101"}]}, result
    assert handler.seen == ["100", "101"], "records after the failure are left for redelivery"


def test_a_stream_batch_whose_every_record_fails_fails_the_invocation() -> None:
    with pytest.raises(StreamBatchFailed):
        stream_batch(_stream(1), FailOn("100"))

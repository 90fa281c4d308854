"""Partial batch responses: what Lambda redelivers when some records of a batch fail."""

from __future__ import annotations

from typing import Any

import pytest

from jobtracker.edge.batch import BatchFailed, partial_batch


def _sqs(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m-{i}", "body": b} for i, b in enumerate(bodies)]}


def _stream(count: int) -> dict[str, Any]:
    return {"Records": [{"dynamodb": {"SequenceNumber": str(100 + i)}} for i in range(count)]}


def _fail_on(bad: set[str]) -> Any:
    seen: list[Any] = []

    def handle(record: dict[str, Any]) -> None:
        seen.append(record)
        key = record.get("body") or record["dynamodb"]["SequenceNumber"]
        if key in bad:
            raise ValueError(f"bad {key}")

    handle.seen = seen  # type: ignore[attr-defined]
    return handle


def test_a_queue_batch_reports_only_the_records_that_failed() -> None:
    # GIVEN three queued messages, the middle one failing
    handler = _fail_on({"b"})
    # WHEN the batch is handled
    result = partial_batch(_sqs("a", "b", "c"), handler, "sqs")
    # THEN only the failed message is reported, and every message was tried
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}, result
    assert len(handler.seen) == 3, "a queue's records are independent: all are tried"


def test_a_stream_batch_stops_at_its_first_failure() -> None:
    # GIVEN four stream records, the second failing
    handler = _fail_on({"101"})
    # WHEN the batch is handled
    result = partial_batch(_stream(4), handler, "stream")
    # THEN Lambda is told to resume from that record, and the later ones wait for it
    assert result == {"batchItemFailures": [{"itemIdentifier": "101"}]}, result
    assert len(handler.seen) == 2, "records after the failure are left for the redelivery"


def test_a_batch_whose_every_record_fails_fails_the_invocation() -> None:
    # GIVEN two messages that both fail
    handler = _fail_on({"a", "b"})
    # WHEN / THEN the invocation raises (Lambda's error metric counts it, SQS redelivers both)
    with pytest.raises(BatchFailed):
        partial_batch(_sqs("a", "b"), handler, "sqs")


def test_a_batch_that_succeeds_reports_nothing() -> None:
    # GIVEN messages that all succeed WHEN handled THEN no failure is reported
    assert partial_batch(_sqs("a", "b"), _fail_on(set()), "sqs") == {"batchItemFailures": []}

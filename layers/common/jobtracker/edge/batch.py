"""Partial batch responses (ReportBatchItemFailures) for the queue and stream consumers: a record
that fails is reported alone and redelivered, the others are done.

Queues go through Powertools' `BatchProcessor` (`queue_batch`), which the retry decider and the
notifier's deferred queue can afford: it loads asyncio and the event data classes, and their
first calls stay at 1.22-1.24x the floor (bench/coldstart.py --instructions; budget 1.30x).

The table's stream keeps its own loop (`stream_batch`), which stops at the first failed record:
Lambda resumes a stream from the lowest failed sequence number, so a record after it that was
handled anyway would be handled, and its change published, twice. Powertools' processor runs
every record of the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

from jobtracker.observability import count, logger


class CountingProcessor(BatchProcessor):
    """Powertools' processor, each failed record logged with its error and counted."""

    def failure_handler(self, record: Any, exception: Any) -> Any:
        logger.error(
            "record failed: reported for redelivery",
            extra={"record": record.message_id},
            exc_info=exception,
        )
        count("BatchRecordsFailed")
        return super().failure_handler(record, exception)


def queue_batch(event: dict[str, Any], body_handler: Callable[[str], object]) -> dict[str, Any]:
    """Hand each SQS message's body to `body_handler`; the answer lists the messages that raised.
    Every message failing fails the invocation (Powertools' BatchProcessingError), so Lambda's
    error metric and retries see it."""
    return dict(
        process_partial_response(
            event=event,
            record_handler=lambda record: body_handler(record.body),
            processor=CountingProcessor(EventType.SQS),
        )
    )


class StreamBatchFailed(RuntimeError):
    """Every record failed: the invocation fails, so Lambda's error metric and retries see it."""


def stream_batch(
    event: dict[str, Any], record_handler: Callable[[dict[str, Any]], object]
) -> dict[str, Any]:
    """Hand each stream record to `record_handler` in order, up to the first that raises; the
    answer names that one, and Lambda redelivers the stream from it. A batch whose every record
    failed fails the invocation."""
    records = event.get("Records") or []
    for record in records:
        try:
            record_handler(record)
        except Exception:
            sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
            logger.exception("record failed: reported for redelivery", extra={"record": sequence})
            count("BatchRecordsFailed")
            if len(records) == 1:
                raise StreamBatchFailed("the batch's one record failed") from None
            return {"batchItemFailures": [{"itemIdentifier": sequence}]}
    return {"batchItemFailures": []}

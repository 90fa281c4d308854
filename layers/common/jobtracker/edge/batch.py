"""Partial batch responses (ReportBatchItemFailures) for the queue and stream consumers: a record
that fails is reported alone and redelivered, the others are done.

Not Powertools' batch utility (`BatchProcessor`): importing it loads asyncio and every event data
class. Measured with it (bench/coldstart.py --instructions, 2026-12-03): the retry decider's first
call went from 1.13x to 1.35x the floor, past the event functions' budget of 1.30x (the notifier,
which loads the data classes anyway, from 1.11x to 1.22x). One loop serves both functions' queues
and the table's stream, which must stop at its first failed record: Lambda resumes a stream from
the lowest failed sequence number, so a record after it handled anyway would be handled, and its
change published, twice (Powertools' processor runs every record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from jobtracker.observability import count, logger

Source = Literal["sqs", "stream"]


class BatchFailed(RuntimeError):
    """Every record failed: the invocation fails, so Lambda's error metric and retries see it."""


def _identifier(record: dict[str, Any], source: Source) -> str:
    if source == "sqs":
        return str(record.get("messageId", ""))
    return str((record.get("dynamodb") or {}).get("SequenceNumber", ""))


def partial_batch(
    event: dict[str, Any], record_handler: Callable[[dict[str, Any]], object], source: Source
) -> dict[str, Any]:
    """Hand each record to `record_handler`; the answer lists the records that raised.

    A stream is ordered and Lambda resumes it from the first failed record, so the records after
    it are left for that redelivery rather than handled twice. A queue's records are independent.
    """
    records = event.get("Records") or []
    failures: list[dict[str, str]] = []
    for record in records:
        try:
            record_handler(record)
        except Exception:
            identifier = _identifier(record, source)
            logger.exception("record failed: reported for redelivery", extra={"record": identifier})
            count("BatchRecordsFailed")
            failures.append({"itemIdentifier": identifier})
            if source == "stream":
                break
    if records and len(failures) == len(records):
        raise BatchFailed(f"all {len(records)} records of the batch failed")
    return {"batchItemFailures": failures}

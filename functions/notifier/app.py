"""DynamoDB stream of the jobs table: an array child's end settled on its array; "Job State
Change" on EventBridge, terminal states on SNS."""

from __future__ import annotations

import jobtracker.boot as boot

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.adapters.notify import notify_deferred, notify_stream_record
from jobtracker.edge.batch import partial_batch
from jobtracker.edge.stream import settle_record
from jobtracker.observability import logger, metrics


def deferred_handler(record: dict[str, Any]) -> None:
    notify_deferred(record["body"])


def stream_handler(record: dict[str, Any]) -> str:
    settle_record(record)  # first: a failure here hands the record again, unpublished
    return notify_stream_record(record)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    # Two sources: the table's stream, and the queue of changes it deferred.
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:sqs":
        return partial_batch(event, deferred_handler, "sqs")
    return partial_batch(event, stream_handler, "stream")


boot.loaded()

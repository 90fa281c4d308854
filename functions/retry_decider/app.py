"""SQS consumer for the retry, launch and deadline queues: decide failed attempts, launch due
ones, enforce timeouts and start deadlines (usecases/deadlines.py)."""

from __future__ import annotations

import jobtracker.boot as boot

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.edge.batch import partial_batch
from jobtracker.edge.work import handle_work_message
from jobtracker.observability import logger, metrics


def record_handler(record: dict[str, Any]) -> None:
    handle_work_message(record["body"])


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return partial_batch(event, record_handler, "sqs")


boot.loaded()

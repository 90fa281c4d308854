"""Powertools batch processing with partial failure reporting, shared by the batch consumers:
one bad record is reported alone (and redelivered), never failing the whole batch."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

# A processor keeps the batch in hand while it runs: one per kind and per thread (a Lambda
# instance has one thread; the local stack runs several instances of a function in one process).
_local = threading.local()


def partial_batch(
    event: dict[str, Any], context: Any, record_handler: Callable[[Any], None], kind: EventType
) -> Any:
    processors: dict[EventType, BatchProcessor] = _local.__dict__.setdefault("processors", {})
    processor = processors.get(kind)
    if processor is None:  # reused across invocations
        processor = processors[kind] = BatchProcessor(event_type=kind)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

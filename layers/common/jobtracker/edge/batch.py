"""Powertools batch processing with partial failure reporting, shared by the batch consumers:
one bad record is reported alone (and redelivered), never failing the whole batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

_processors: dict[EventType, BatchProcessor] = {}


def partial_batch(
    event: dict[str, Any], context: Any, record_handler: Callable[[Any], None], kind: EventType
) -> Any:
    processor = _processors.get(kind)
    if processor is None:  # one per kind, reused across invocations
        processor = _processors[kind] = BatchProcessor(event_type=kind)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )

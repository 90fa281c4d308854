"""EventBridge "ECS Task State Change" → attempt and job state, version-guarded.

A malformed or foreign event is logged, counted and dropped (returning normally), so it is
never retried forever; a real failure (DynamoDB down) raises and EventBridge retries.
"""

from __future__ import annotations

import jobtracker.boot as boot

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.edge.task_events import handle_task_event
from jobtracker.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    result = handle_task_event(event)
    return {"result": result.value}


boot.loaded()

"""Invoked by hand (`aws lambda invoke --function-name <RedriveFunction>`): hands what is in the
event dead-letter queue back to on_task_state's and the ticks' logic (edge/redrive.py)."""

from __future__ import annotations

import jobtracker.boot as boot

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.edge.redrive import redrive
from jobtracker.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return asdict(redrive())


boot.loaded()

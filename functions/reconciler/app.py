"""Every minute: timeouts, quiet tasks, lost hand-offs and stuck PENDING jobs (see reconcile.py)."""

from __future__ import annotations

import jobtracker.boot as boot

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.observability import logger, metrics
from jobtracker.usecases.reconcile import reconcile


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconcile()
    return {
        "seen": report.seen,
        "actions": dict(report.actions),
        "errors": report.errors,
        "backed_off": report.backed_off,
    }


boot.loaded()

"""Schedule tick (EventBridge Scheduler) → one job, through the same logic as POST /jobs.

A malformed schedule input is logged, counted and dropped: retrying it would never help.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.core.checks import Invalid
from jobtracker.edge.api_models import scheduled_run
from jobtracker.observability import count, logger, metrics
from jobtracker.usecases.periodic import run_tick


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        run = scheduled_run(event)
    except Invalid as exc:
        logger.error(
            "malformed schedule input dropped",
            extra={"errors": [{"field": exc.field, "message": exc.message}]},
        )
        count("ScheduleInputsMalformed")
        return {"outcome": "malformed"}
    result = run_tick(run)
    return {"outcome": result.outcome.value, "job_id": result.job_id, "replaced": result.replaced}

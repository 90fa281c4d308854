"""A schedule's tick (EventBridge Scheduler's input, template.yaml's ScheduleV2 `Input`) → one job,
through the same logic as POST /jobs.

Ticks go to create_job, the function that checks POST /jobs' body, because a tick's job is
checked by that same pydantic model: a function of its own would pay pydantic's load (about
0.45x the floor's instructions, bench/coldstart.py) on an event function's budget (1.30x).
A malformed tick is logged, counted and dropped: retrying it would never help.
"""

from __future__ import annotations

from typing import Any

from jobtracker.core.checks import Invalid
from jobtracker.edge.api_models import scheduled_run
from jobtracker.observability import count, logger
from jobtracker.usecases.periodic import run_tick


def is_tick(event: object) -> bool:
    """Anything API Gateway did not send: its every request has a requestContext."""
    return not (isinstance(event, dict) and "requestContext" in event)


def on_tick(event: object) -> dict[str, Any]:
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

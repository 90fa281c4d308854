"""GET /jobs, GET /jobs/{job_id}, GET /jobs/{job_id}/logs, POST /jobs/{job_id}/cancel,
GET /schedules, GET /stats, GET /definitions (edge/routes.py's `queries`); any other route the
API does not serve is answered here (404, or 405 on a path another function serves)."""

from __future__ import annotations

import jobtracker.boot as boot

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.edge.api import make_resolver
from jobtracker.edge.routes import queries, submissions
from jobtracker.observability import logger, metrics

app = make_resolver(queries, submissions)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


boot.loaded()

"""POST /jobs: check, store, launch (edge/routes.py's `submissions`, usecases/submit.py); and a
schedule's tick, whose job the same model checks (edge/ticks.py, usecases/periodic.py)."""

from __future__ import annotations

import jobtracker.boot as boot

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.edge.api import make_resolver
from jobtracker.edge.routes import queries, submissions
from jobtracker.edge.ticks import is_tick, on_tick
from jobtracker.observability import logger, metrics

app = make_resolver(submissions, queries)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_tick(event):
        return on_tick(event)
    return app.resolve(event, context)


boot.loaded()

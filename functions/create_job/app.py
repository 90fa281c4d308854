"""POST /jobs: validate, store, launch. All logic lives in jobtracker.service."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.core.submission import JobSubmission
from jobtracker.edge.api import caller_of, idempotency_key, json_response, make_resolver
from jobtracker.edge.api_models import job_view
from jobtracker.observability import logger, metrics
from jobtracker.usecases.submit import SubmitKind, submit_job

app = make_resolver()

# 201: launched; 202: stored, its launch waits (capacity, throttling); 200: a replayed key.
STATUS = {SubmitKind.CREATED: 201, SubmitKind.ACCEPTED: 202, SubmitKind.REPLAYED: 200}


@app.post("/jobs")
def create_job(submission: JobSubmission) -> Any:
    submitted = submit_job(submission, caller=caller_of(app), idempotency_key=idempotency_key(app))
    return json_response(STATUS[submitted.kind], job_view(submitted.job))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

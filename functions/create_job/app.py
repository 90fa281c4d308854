"""POST /jobs: validate, store, launch. All logic lives in jobtracker.service."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.edge.api import (
    caller_of,
    idempotency_key,
    json_response,
    make_resolver,
    responses,
)
from jobtracker.edge.api_models import JobSubmission, JobView, job_view
from jobtracker.observability import logger, metrics
from jobtracker.usecases.submit import SubmitKind, submit_job

app = make_resolver()

# 201: launched; 202: stored, its launch waits (capacity, throttling); 200: a replayed key.
STATUS = {SubmitKind.CREATED: 201, SubmitKind.ACCEPTED: 202, SubmitKind.REPLAYED: 200}


@app.post(
    "/jobs",
    summary="Submit a job",
    description="An Idempotency-Key header makes a retried submission answer the same job.",
    responses=responses(
        {
            201: (JobView, "stored and launched"),
            202: (JobView, "stored; its launch waits for capacity"),
            200: (JobView, "the job an earlier request with this Idempotency-Key made"),
        },
        400,
        409,
        413,
        422,
    ),
)
def create_job(submission: JobSubmission) -> Any:
    submitted = submit_job(
        submission.to_core(), caller=caller_of(app), idempotency_key=idempotency_key(app)
    )
    return json_response(STATUS[submitted.kind], job_view(submitted.job))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

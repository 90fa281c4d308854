"""POST /jobs: check, store, launch (usecases/submit.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.core.submission import Submission
from jobtracker.edge.api import Reply, Request, Router, body_as, idempotency_key
from jobtracker.edge.views import JobView, job_view
from jobtracker.observability import logger, metrics
from jobtracker.usecases.submit import SubmitKind, submit_job

app = Router()

# 201: launched; 202: stored, its launch waits (capacity, throttling); 200: a replayed key.
STATUS = {SubmitKind.CREATED: 201, SubmitKind.ACCEPTED: 202, SubmitKind.REPLAYED: 200}


@app.route(
    "POST",
    "/jobs",
    summary="Submit a job",
    description="An Idempotency-Key header makes a retried submission answer the same job.",
    body="JobSubmission",
    body_required=True,
    responses={
        201: (JobView, "stored and launched"),
        202: (JobView, "stored; its launch waits for capacity"),
        200: (JobView, "the job an earlier request with this Idempotency-Key made"),
    },
    errors=(400, 409, 413, 422),
)
def create_job(request: Request) -> Reply:
    submission = body_as(Submission.from_dict, request.body)
    submitted = submit_job(
        submission, caller=request.caller, idempotency_key=idempotency_key(request)
    )
    return Reply(STATUS[submitted.kind], job_view(submitted.job))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event)

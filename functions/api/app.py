"""GET /jobs, GET /jobs/{job_id}, GET /jobs/{job_id}/logs, POST /jobs/{job_id}/cancel,
GET /schedules, GET /stats."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.core.domain import JobStatus
from jobtracker.edge.api import json_response, make_resolver, responses
from jobtracker.edge.api_models import (
    CancelRequest,
    JobList,
    JobView,
    LogsView,
    ScheduleList,
    StatsView,
    job_summary,
    job_view,
    logs_view,
    schedule_view,
    stats_view,
)
from jobtracker.observability import logger, metrics
from jobtracker.usecases.cancel import cancel_job
from jobtracker.usecases.query import get_job, job_logs, list_jobs, overview
from jobtracker.usecases.schedules import list_schedules

app = make_resolver()


@app.get(
    "/jobs",
    summary="List jobs, newest first",
    responses=responses({200: (JobList, "a page of jobs")}, 400, 422),
)
def list_route(
    status: Annotated[JobStatus | None, Query()] = None,
    definition: Annotated[str | None, Query(max_length=64)] = None,
    schedule: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> Any:
    jobs, token = list_jobs(
        status.value if status else None, definition, schedule, limit, next_token
    )
    return json_response(200, JobList(jobs=[job_summary(j) for j in jobs], next_token=token))


@app.get(
    "/jobs/<job_id>",
    summary="One job with all its attempts",
    responses=responses({200: (JobView, "the job")}, 404),
)
def get_route(job_id: str) -> Any:
    return json_response(200, job_view(get_job(job_id)))


@app.get(
    "/jobs/<job_id>/logs",
    summary="A page of an attempt's log lines, oldest first (follow with next_token)",
    responses=responses({200: (LogsView, "log lines")}, 400, 404, 422),
)
def logs_route(
    job_id: str,
    attempt: Annotated[int | None, Query(ge=1, le=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> Any:
    return json_response(200, logs_view(job_logs(job_id, attempt, limit, next_token)))


@app.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel a job (its task is stopped)",
    responses=responses(
        {202: (JobView, "cancelling: the task is being stopped"), 200: (JobView, "cancelled")},
        404,
        409,
        422,
    ),
)
def cancel_route(job_id: str, request: Annotated[CancelRequest | None, Body()] = None) -> Any:
    job = cancel_job(job_id, request.reason if request else None)
    return json_response(202 if not job.status.terminal else 200, job_view(job))


@app.get(
    "/schedules",
    summary="The job schedules: expression, overlap policy, next tick and latest runs",
    responses=responses({200: (ScheduleList, "the schedules, by name")}, 422),
)
def schedules_route(runs: Annotated[int, Query(ge=0, le=25)] = 5) -> Any:
    return json_response(
        200, ScheduleList(schedules=[schedule_view(s) for s in list_schedules(runs)])
    )


@app.get(
    "/stats",
    summary="Recent jobs in figures: by status over time, per definition, waiting for launch",
    responses=responses({200: (StatsView, "the window's figures")}, 422),
)
def stats_route(hours: Annotated[int, Query(ge=1, le=168)] = 24) -> Any:
    return json_response(200, stats_view(overview(hours)))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

"""GET /jobs, GET /jobs/{job_id}, GET /jobs/{job_id}/logs, POST /jobs/{job_id}/cancel,
GET /schedules, GET /stats, GET /definitions."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from jobtracker.core.domain import JobStatus
from jobtracker.core.submission import CancelRequest
from jobtracker.edge.api import Param, Reply, Request, Router, body_as
from jobtracker.edge.views import (
    DefinitionList,
    JobList,
    JobView,
    LogsView,
    ScheduleList,
    StatsView,
    definition_list,
    job_summary,
    job_view,
    logs_view,
    schedule_view,
    stats_view,
)
from jobtracker.observability import logger, metrics
from jobtracker.usecases.cancel import cancel_job
from jobtracker.usecases.query import get_job, job_logs, list_jobs, overview

app = Router()

NEXT_TOKEN = Param("next_token", max_length=2048)


@app.route(
    "GET",
    "/jobs",
    summary="List jobs, newest first",
    params=(
        Param("status", choices=tuple(s.value for s in JobStatus)),
        Param("definition", max_length=64),
        Param("schedule", max_length=64),
        Param("limit", int, default=25, minimum=1, maximum=100),
        NEXT_TOKEN,
    ),
    responses={200: (JobList, "a page of jobs")},
    errors=(400, 422),
)
def list_route(request: Request) -> Reply:
    q = request.query
    jobs, token = list_jobs(
        q["status"], q["definition"], q["schedule"], q["limit"], q["next_token"]
    )
    return Reply(200, JobList(jobs=[job_summary(j) for j in jobs], next_token=token))


@app.route(
    "GET",
    "/jobs/{job_id}",
    summary="One job with all its attempts",
    responses={200: (JobView, "the job")},
    errors=(404,),
)
def get_route(request: Request) -> Reply:
    return Reply(200, job_view(get_job(request.path_params["job_id"])))


@app.route(
    "GET",
    "/jobs/{job_id}/logs",
    summary="A page of an attempt's log lines, oldest first (follow with next_token)",
    params=(
        Param("attempt", int, minimum=1, maximum=1000),
        Param("limit", int, default=1000, minimum=1, maximum=10000),
        NEXT_TOKEN,
    ),
    responses={200: (LogsView, "log lines")},
    errors=(400, 404, 422),
)
def logs_route(request: Request) -> Reply:
    q = request.query
    found = job_logs(request.path_params["job_id"], q["attempt"], q["limit"], q["next_token"])
    return Reply(200, logs_view(found))


@app.route(
    "POST",
    "/jobs/{job_id}/cancel",
    summary="Cancel a job (its task is stopped)",
    body="CancelRequest",
    responses={
        202: (JobView, "cancelling: the task is being stopped"),
        200: (JobView, "cancelled"),
    },
    errors=(404, 409, 422),
)
def cancel_route(request: Request) -> Reply:
    cancel = (
        CancelRequest() if request.body is None else body_as(CancelRequest.from_dict, request.body)
    )
    job = cancel_job(request.path_params["job_id"], cancel.reason)
    return Reply(202 if not job.status.terminal else 200, job_view(job))


@app.route(
    "GET",
    "/schedules",
    summary="The job schedules: expression, overlap policy, next tick and latest runs",
    params=(Param("runs", int, default=5, minimum=0, maximum=25),),
    responses={200: (ScheduleList, "the schedules, by name")},
    errors=(422,),
)
def schedules_route(request: Request) -> Reply:
    # Loaded by the one route that needs it: the cron parser and the tick's model are a tenth
    # of this function's cold start (bench/coldstart.py).
    from jobtracker.usecases.schedules import list_schedules

    schedules = list_schedules(request.query["runs"])
    return Reply(200, ScheduleList(schedules=[schedule_view(s) for s in schedules]))


@app.route(
    "GET",
    "/stats",
    summary="Recent jobs in figures: by status over time, per definition, waiting for launch",
    params=(Param("hours", int, default=24, minimum=1, maximum=168),),
    responses={200: (StatsView, "the window's figures")},
    errors=(422,),
)
def stats_route(request: Request) -> Reply:
    return Reply(200, stats_view(overview(request.query["hours"])))


@app.route(
    "GET",
    "/definitions",
    summary="The deployment's job definitions: the names POST /jobs takes, with their sizes",
    responses={200: (DefinitionList, "the job definitions, by name")},
)
def definitions_route(request: Request) -> Reply:
    return Reply(200, definition_list())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event)

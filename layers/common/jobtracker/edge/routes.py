"""The HTTP API's routes, the one list of them: `submissions` (POST /jobs, the create_job
function, which may launch tasks) and `queries` (everything else, the api function). Each route
reads its request through the models (Powertools validates them), calls one use case and answers
a view. The template's routes, the console's allow-list and the OpenAPI document are derived
from or checked against these routers."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from jobtracker.core.domain import JobStatus
from jobtracker.edge.api import BODY_ERRORS, answer, caller_of, idempotency_key, responses
from jobtracker.edge.api_models import CancelRequest, JobSubmission, scheduled_run
from jobtracker.edge.pages import (
    JOBS_PAGE,
    LOG_PAGE,
    MAX_JOBS_PAGE,
    MAX_LOG_PAGE,
    MAX_SCHEDULE_RUNS,
    MAX_STATS_HOURS,
    SCHEDULE_RUNS,
    STATS_HOURS,
)
from jobtracker.edge.views import (
    DefinitionList,
    JobList,
    JobView,
    LogsView,
    ScheduleList,
    ScheduleView,
    StatsView,
    definition_list,
    job_list,
    job_view,
    logs_view,
    schedule_view,
    stats_view,
)

submissions = Router()
queries = Router()

NextToken = Annotated[str | None, Query(max_length=2048)]
Runs = Annotated[int, Query(ge=0, le=MAX_SCHEDULE_RUNS, description="latest runs to show")]
Filter = Annotated[str | None, Query(max_length=64)]


@submissions.post(
    "/jobs",
    summary="Submit a job",
    description="An Idempotency-Key header makes a retried submission answer the same job.",
    responses=responses(
        {
            201: (JobView, "stored and launched"),
            202: (JobView, "stored; its launch waits for capacity"),
            200: (JobView, "the job an earlier request with this Idempotency-Key made"),
        },
        409,
        *BODY_ERRORS,
    ),
)
def create_job(submission: Annotated[JobSubmission, Body()]) -> Any:
    from jobtracker.usecases.submit import SubmitKind, submit_job

    submitted = submit_job(
        submission.to_core(),
        caller=caller_of(submissions),
        idempotency_key=idempotency_key(submissions),
    )
    # 201: launched; 202: stored, its launch waits (capacity, throttling); 200: a replayed key.
    status = {SubmitKind.CREATED: 201, SubmitKind.ACCEPTED: 202, SubmitKind.REPLAYED: 200}
    return answer(status[submitted.kind], job_view(submitted.job))


@queries.get(
    "/jobs",
    summary="List jobs, newest first",
    responses=responses({200: (JobList, "a page of jobs")}, 400, 422),
)
def list_route(
    status: Annotated[JobStatus | None, Query()] = None,
    definition: Filter = None,
    schedule: Filter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_JOBS_PAGE)] = JOBS_PAGE,
    next_token: NextToken = None,
    tag: Annotated[
        str | None,
        Query(
            pattern=r"^[^=]{1,128}=.{0,256}$",
            description="key=value: only jobs with that tag (filtered as the pages are read:"
            " a page may hold fewer than `limit`; follow next_token)",
        ),
    ] = None,
    children: Annotated[
        bool, Query(description="arrays' children too (by default, parents and plain jobs)")
    ] = False,
) -> Any:
    from jobtracker.usecases.query import list_jobs

    jobs, token = list_jobs(
        status.value if status else None,
        definition,
        schedule,
        limit,
        next_token,
        tag=tag,
        children=children,
    )
    return answer(200, job_list(jobs, token))


@queries.get(
    "/jobs/<job_id>",
    summary="One job with all its attempts (an array's parent: with its children's summary)",
    responses=responses({200: (JobView, "the job")}, 404),
)
def get_route(job_id: str) -> Any:
    from jobtracker.usecases.query import read_job

    found = read_job(job_id)
    return answer(
        200,
        job_view(
            found.job,
            array=found.array,
            dependencies=found.dependencies,
            dependents=found.dependents,
        ),
    )


@queries.get(
    "/jobs/<job_id>/dependents",
    summary="The jobs that wait (or waited) on this one, a page at a time",
    responses=responses({200: (JobList, "a page of dependents")}, 400, 404, 422),
)
def dependents_route(
    job_id: str,
    limit: Annotated[int, Query(ge=1, le=MAX_JOBS_PAGE)] = JOBS_PAGE,
    next_token: NextToken = None,
) -> Any:
    from jobtracker.usecases.query import get_job, list_dependents

    get_job(job_id)  # a 404 for no such job, rather than an empty page
    found, token = list_dependents(job_id, limit, next_token)
    return answer(200, job_list(found, token))


@queries.get(
    "/jobs/<job_id>/children",
    summary="An array's children, in index order",
    description="Only children made so far: an index waiting for its turn has no job yet."
    " A status filter reads the children a window at a time: a page may hold fewer than"
    " `limit`; follow next_token.",
    responses=responses({200: (JobList, "a page of children")}, 400, 404, 422),
)
def children_route(
    job_id: str,
    status: Annotated[JobStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_JOBS_PAGE)] = JOBS_PAGE,
    next_token: NextToken = None,
) -> Any:
    from jobtracker.usecases.query import list_children

    kids, token = list_children(job_id, status.value if status else None, limit, next_token)
    return answer(200, job_list(kids, token))


@queries.get(
    "/jobs/<job_id>/logs",
    summary="A page of an attempt's log lines, oldest first (follow with next_token)",
    responses=responses({200: (LogsView, "log lines")}, 400, 404, 422),
)
def logs_route(
    job_id: str,
    attempt: Annotated[int | None, Query(ge=1, le=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE)] = LOG_PAGE,
    next_token: NextToken = None,
) -> Any:
    from jobtracker.usecases.query import job_logs

    return answer(200, logs_view(job_logs(job_id, attempt, limit, next_token)))


@queries.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel a job (its task is stopped)",
    responses=responses(
        {202: (JobView, "cancelling: the task is being stopped"), 200: (JobView, "cancelled")},
        404,
        409,
        *BODY_ERRORS,
    ),
)
def cancel_route(job_id: str, cancel: Annotated[CancelRequest | None, Body()] = None) -> Any:
    from jobtracker.usecases.cancel import cancel_job

    job = cancel_job(job_id, cancel.reason if cancel else None)
    return answer(202 if not job.status.terminal else 200, job_view(job))


@queries.post(
    "/jobs/<job_id>/retry-failed",
    summary="Run a finished array's failed children again, same indexes, same parent",
    description="An array that SUCCEEDED (within its tolerance) runs its FAILED and TIMED_OUT"
    " children again; one that FAILED runs every child that did not succeed (those its failure"
    " cancelled or never launched too), within its max_running. The parent is RUNNING again.",
    responses=responses({202: (JobView, "the parent, running again")}, 404, 409),
)
def retry_failed_route(job_id: str) -> Any:
    from jobtracker.usecases.arrays import retry_failed

    return answer(202, job_view(retry_failed(job_id)))


@queries.get(
    "/schedules",
    summary="The job schedules: expression, overlap policy, next tick and latest runs",
    responses=responses({200: (ScheduleList, "the schedules, by name")}, 422),
)
def schedules_route(runs: Runs = SCHEDULE_RUNS) -> Any:
    # Loaded by the one route that needs it: the cron parser is a tenth of a cold start.
    from jobtracker.usecases.schedules import list_schedules

    schedules = list_schedules(runs, scheduled_run)
    return answer(200, ScheduleList(schedules=[schedule_view(s) for s in schedules]))


# Pause and resume: one route each, the same but for the state they ask for.
SCHEDULE_STATES = {
    "pause": (True, "Pause a schedule: its ticks stop firing (EventBridge Scheduler's DISABLED)",
              "Pausing a paused schedule changes nothing. Its running jobs go on."),
    "resume": (False, "Resume a paused schedule: its next tick fires",
               "The ticks that fell while it was paused are not caught up (as Scheduler does)."),
}  # fmt: skip


def _schedule_state_route(action: str) -> None:
    paused, summary, description = SCHEDULE_STATES[action]

    def route(name: str, runs: Runs = SCHEDULE_RUNS) -> Any:
        from jobtracker.usecases.schedules import set_paused

        return answer(200, schedule_view(set_paused(name, paused, runs, scheduled_run)))

    route.__name__ = f"{action}_route"  # the OpenAPI operation's id
    queries.post(
        f"/schedules/<name>/{action}",
        summary=summary,
        description="`name`: the name its jobs carry, or EventBridge Scheduler's own. "
        + description,
        responses=responses({200: (ScheduleView, "the schedule as it is now")}, 404, 409, 422),
    )(route)


for _action in SCHEDULE_STATES:
    _schedule_state_route(_action)


@submissions.post(
    "/schedules/<name>/run",
    summary="Run a schedule now: its tick at this second, with its overlap policy",
    description="The job is the schedule's tick for this second, made through the tick's own"
    " path (one job per tick: a repeat within the second answers the same job); a paused"
    " schedule runs too. 409 when its overlap policy (Forbid) skips it or its input is no tick.",
    responses=responses(
        {201: (JobView, "the tick's job"), 200: (JobView, "this second's tick made it already")},
        404,
        409,
    ),
)
def run_schedule_route(name: str) -> Any:
    from jobtracker.usecases.schedules import run_now

    ran = run_now(name, scheduled_run, caller=caller_of(submissions))
    return answer(201 if ran.created else 200, job_view(ran.job))


@queries.get(
    "/stats",
    summary="Recent jobs in figures: by status over time, per definition, waiting for launch",
    responses=responses({200: (StatsView, "the window's figures")}, 422),
)
def stats_route(hours: Annotated[int, Query(ge=1, le=MAX_STATS_HOURS)] = STATS_HOURS) -> Any:
    from jobtracker.usecases.query import overview

    return answer(200, stats_view(overview(hours)))


@queries.get(
    "/definitions",
    summary="The deployment's job definitions: the names POST /jobs takes, with their sizes",
    responses=responses({200: (DefinitionList, "the job definitions, by name")}),
)
def definitions_route() -> Any:
    return answer(200, definition_list())


ROUTERS = (submissions, queries)

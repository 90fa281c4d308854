"""The HTTP API's answers: what GET, POST and cancel return, as pydantic models built from the
core's models. The resolver serializes them, the OpenAPI document takes their schemas, and the
client parses the API's answers with the same classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from jobtracker.config import JobDefinition, Settings, get_settings
from jobtracker.core.arrays import FINAL, ArraySpec, Summary, spec_of
from jobtracker.core.cost import attempt_cost, job_cost
from jobtracker.core.diagnosis import diagnose
from jobtracker.core.domain import Attempt, Job, iso

if TYPE_CHECKING:  # the views' sources only: the client imports these classes without them
    from jobtracker.core.dependencies import Dependency
    from jobtracker.core.overview import Overview
    from jobtracker.usecases.query import AttemptLogs
    from jobtracker.usecases.schedules import ScheduleState


class Answer(BaseModel):
    """Base of the API's answers. Each builds its validator and serializer when it is first used,
    not at import: a function answers a few of the twenty (bench/coldstart.py)."""

    model_config = ConfigDict(defer_build=True)


USD_DECIMALS = 6  # a millionth of a dollar: a 0.25 vCPU task's minimum minute is $0.0002


class ContainerView(Answer):
    name: str
    exit_code: int | None
    reason: str | None


class StateView(Answer):
    status: str
    version: int
    at: str | None
    desired_status: str | None = None
    stop_code: str | None = None
    source: str | None = None


class LogsLink(Answer):
    group: str
    stream: str
    console_url: str


class AttemptView(Answer):
    number: int
    task_arn: str | None
    task_url: str | None  # the task in the ECS console
    client_token: str
    status: str | None
    created_at: str | None
    launched_at: str | None
    started_at: str | None
    stopped_at: str | None
    stop_code: str | None
    stopped_reason: str | None
    containers: list[ContainerView]
    outcome: str | None
    rule: str | None
    diagnosis: str | None  # what to do about a failed attempt (core/diagnosis.py)
    cost_usd: float | None  # estimated Fargate cost at listed prices (core/cost.py)
    counted: bool
    spot_interruption_at: str | None
    log_stream: str | None
    logs: LogsLink | None
    history: list[StateView]


class ArraySummaryView(Answer):
    """An array's children by status: PENDING the indexes not yet launched, RUNNING those
    launched and not finished (starting, running or waiting for a launch slot), then each
    final status. Live while the array runs, exact once it is finished."""

    PENDING: int
    RUNNING: int
    SUCCEEDED: int
    FAILED: int
    TIMED_OUT: int
    CANCELLED: int


class ArrayView(Answer):
    size: int
    max_running: int | None
    tolerated_failures: int  # as a count (a percent asked for is turned into one)
    summary: ArraySummaryView
    # Added later: optional, so a client reads an older API's answers too.
    sequential: bool = False  # child i waits for child i-1...
    sequential_condition: str | None = None  # ...to end as this says (a sequential array)


class DependencyView(Answer):
    """A job this one waits on, as it is now, and what its condition says of it."""

    job_id: str
    condition: str  # succeeded | finished | failed
    mode: str  # job | per_index (an array on an array) | sequential (a child on its sibling)
    # the dependency's status now (None: no longer kept, or not made yet; or not read: the
    # answers of POST and cancel)
    status: str | None
    met: bool | None  # True: met; False: never will be; None: not decided yet
    links: dict[str, str]


class JobView(Answer):
    id: str
    definition: str
    status: str
    status_reason: str | None
    attempt: int
    created_at: str
    updated_at: str
    finished_at: str | None
    not_before: str | None
    launch_error: str | None
    command: list[str] | None
    parameters: dict[str, Any]
    environment: dict[str, str]
    timeout_seconds: int | None
    start_timeout_seconds: int | None
    queue_timeout_seconds: int | None
    retry: dict[str, Any]  # the policy the job runs under: the defaults with its overrides
    retry_overrides: dict[str, Any]  # what the job was submitted with (a rerun resubmits it)
    tags: dict[str, str]
    schedule: str | None
    scheduled_time: str | None
    attempts: list[AttemptView]
    cost_usd: float | None  # the attempts' estimated Fargate costs, summed
    links: dict[str, str]
    # Added later: optional, so a client reads an older API's answers too.
    array: ArrayView | None = None  # an array's parent: its size and its children's summary
    parent_id: str | None = None  # a child of an array: its parent...
    array_index: int | None = None  # ...and its index (JOB_ARRAY_INDEX)
    depends_on: list[DependencyView] | None = None  # what it waits (or waited) on
    dependents: JobList | None = None  # the first jobs waiting on it (links.dependents: all)
    released_at: str | None = None  # when its last dependency was met (WAITING ended)


class JobSummary(Answer):
    id: str
    definition: str
    status: str
    attempt: int
    created_at: str
    updated_at: str
    schedule: str | None
    links: dict[str, str]
    # Added later: optional, so a client reads an older API's pages too.
    status_reason: str | None = None  # why it is in that status (waiting for capacity, a rule)
    started_at: str | None = None  # when the current attempt's task started running
    finished_at: str | None = None
    parent_id: str | None = None  # a child of an array: its parent and index
    array_index: int | None = None
    array_size: int | None = None  # an array's parent: its size; a child: its array's


class JobList(Answer):
    jobs: list[JobSummary]
    next_token: str | None


def _console_escape(name: str) -> str:
    # The CloudWatch console's own URL encoding: percent-encode, then "%" becomes "$25".
    return quote(name, safe="").replace("%", "$25")


def logs_link(a: Attempt, region: str) -> LogsLink | None:
    where = a.log_location
    if where is None:
        return None
    group, stream = where
    url = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{_console_escape(group)}"
        f"/log-events/{_console_escape(stream)}"
    )
    return LogsLink(group=group, stream=stream, console_url=url)


def task_link(task_arn: str | None, region: str) -> str | None:
    """The task's page in the ECS console (arn:...:task/<cluster>/<task id>)."""
    parts = (task_arn or "").split(":task/", 1)[-1].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    cluster, task = (quote(p, safe="") for p in parts)
    return (
        f"https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/tasks/{task}"
        f"/configuration?region={region}"
    )


def _usd(amount: float | None) -> float | None:
    return None if amount is None else round(amount, USD_DECIMALS)


def _attempt_view(a: Attempt, definition: JobDefinition | None, region: str) -> AttemptView:
    return AttemptView(
        number=a.number,
        task_arn=a.task_arn,
        task_url=task_link(a.task_arn, region),
        client_token=a.client_token,
        status=a.last_status,
        created_at=a.created_at,
        launched_at=a.launched_at,
        started_at=a.started_at,
        stopped_at=a.stopped_at,
        stop_code=a.stop_code,
        stopped_reason=a.stopped_reason,
        containers=[
            ContainerView(name=c.name, exit_code=c.exit_code, reason=c.reason) for c in a.containers
        ],
        outcome=a.outcome,
        rule=a.rule,
        diagnosis=diagnose(a),
        cost_usd=_usd(attempt_cost(a, definition)),
        counted=not a.uncounted,
        spot_interruption_at=a.spot_interruption_at,
        log_stream=a.log_stream,
        logs=logs_link(a, region),
        history=[
            StateView(
                status=str(h.get("status")),
                version=int(h.get("version", 0)),
                at=h.get("at"),
                desired_status=h.get("desired_status"),
                stop_code=h.get("stop_code"),
                source=h.get("source"),
            )
            for h in a.history_entries()
        ],
    )


def _links(job: Job) -> dict[str, str]:
    job_id = job.job_id
    links = {
        "self": f"/jobs/{job_id}",
        "cancel": f"/jobs/{job_id}/cancel",
        "logs": f"/jobs/{job_id}/logs",
    }
    if job.is_array:
        links["children"] = f"/jobs/{job_id}/children"
        links["retry_failed"] = f"/jobs/{job_id}/retry-failed"
    if job.parent_id:
        links["parent"] = f"/jobs/{job.parent_id}"
    if job.has_dependents:
        links["dependents"] = f"/jobs/{job_id}/dependents"
    return links


def _effective_retry(job: Job, settings: Settings) -> dict[str, Any]:
    """The policy the job runs under (the job stores only its own overrides)."""
    from jobtracker.core.lifecycle import policy_of

    return policy_of(job, settings).to_dict()


def array_view(spec: ArraySpec, summary: Summary, asked: ArraySpec | None = None) -> ArrayView:
    """`spec`: the counters' (the window as a count); `asked`: what it was submitted with."""
    counts = {s.value: summary.count(s) for s in FINAL}
    condition = None
    if asked is not None and asked.sequential:
        condition = asked.sequential_condition or "succeeded"
    return ArrayView(
        sequential=condition is not None,
        sequential_condition=condition,
        size=spec.size,
        max_running=spec.max_running,
        tolerated_failures=spec.tolerated,
        summary=ArraySummaryView(
            PENDING=spec.size - summary.launched, RUNNING=summary.running, **counts
        ),
    )


def dependency_view(dep: Dependency, found: Job | None) -> DependencyView:
    from jobtracker.core.dependencies import Verdict, verdict

    status = found.status if found is not None else None
    decided = verdict(dep.condition, status) if found is not None else Verdict.OPEN
    return DependencyView(
        job_id=dep.job_id,
        condition=dep.condition.value,
        mode=dep.mode.value,
        status=status.value if status else None,
        met=None if decided == Verdict.OPEN else decided == Verdict.MET,
        links={"self": f"/jobs/{dep.job_id}"},
    )


def job_view(
    job: Job,
    settings: Settings | None = None,
    array: tuple[ArraySpec, Summary] | None = None,
    dependencies: list[tuple[Dependency, Job | None]] | None = None,
    dependents: tuple[list[Job], str | None] | None = None,
) -> JobView:
    """`array`: an array parent's spec and counters (without them, a summary of nothing yet);
    `dependencies`: what it depends on, as read (without them, unread); `dependents`: a first
    page of its own."""
    from jobtracker.core.dependencies import shown

    if dependencies is None:
        dependencies = [(d, None) for d in shown(job)]
    settings = settings or get_settings()
    # Costs are priced on the definition as configured now (None once it is removed).
    definition = settings.job_definitions.get(job.definition)
    # An array's parent runs no task: no attempts of its own (its children have theirs).
    attempts = [] if job.is_array else [job.attempts[n] for n in sorted(job.attempts)]
    # What it was submitted with, as stored (its own retry overrides under retry_overrides).
    asked = job.spec.to_dict()
    del asked["definition"]  # shown in both
    asked["retry_overrides"] = asked.pop("retry")
    del asked["array"]  # shown with its summary
    del asked["depends_on"]  # shown with each dependency's status
    spec = spec_of(job.spec.array)
    if array is None and spec is not None:
        array = (spec, Summary())
    return JobView(
        **_shown_in_both(job),
        **asked,
        not_before=job.not_before,
        launch_error=job.launch_error,
        retry=_effective_retry(job, settings),
        scheduled_time=job.scheduled_time,
        attempts=[_attempt_view(a, definition, settings.region) for a in attempts],
        cost_usd=_usd(job_cost(attempts, definition)),
        array=array_view(*array, spec) if array else None,
        parent_id=job.parent_id,
        array_index=job.array_index if job.parent_id else None,
        depends_on=(
            [dependency_view(d, found) for d, found in dependencies] if dependencies else None
        ),
        released_at=job.released_at,
        dependents=(job_list(*dependents) if dependents and dependents[0] else None),
    )


def job_list(jobs: list[Job], next_token: str | None) -> JobList:
    """A page of jobs, as every list route answers it."""
    return JobList(jobs=[job_summary(j) for j in jobs], next_token=next_token)


def job_summary(job: Job) -> JobSummary:
    current = job.attempts.get(job.attempt)
    spec = spec_of(job.spec.array)
    return JobSummary(
        **_shown_in_both(job),
        started_at=current.started_at if current else None,
        parent_id=job.parent_id,
        array_index=job.array_index if job.parent_id else None,
        array_size=spec.size if spec else (job.array_size or None),
    )


def _shown_in_both(job: Job) -> dict[str, Any]:
    """What a job's view and its summary in a list both show."""
    return {
        "id": job.job_id,
        "definition": job.definition,
        "status": job.status.value,
        "status_reason": job.status_reason,
        "attempt": job.attempt,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
        "schedule": job.schedule_name,
        "links": _links(job),
    }


class LogLine(Answer):
    at: str
    message: str


class LogsView(Answer):
    job_id: str
    attempt: int
    logs: LogsLink | None
    events: list[LogLine]
    next_token: str | None
    # True once the attempt's task has stopped: a follower reads until a page comes back empty.
    finished: bool


def logs_view(found: AttemptLogs, settings: Settings | None = None) -> LogsView:
    settings = settings or get_settings()
    return LogsView(
        job_id=found.job.job_id,
        attempt=found.attempt.number,
        logs=logs_link(found.attempt, settings.region),
        events=[LogLine(at=iso(e.at) or "", message=e.message) for e in found.page.events],
        next_token=found.page.next_token,
        finished=found.finished,
    )


class ScheduleView(Answer):
    name: str  # the name its jobs carry (GET /jobs?schedule=NAME)
    scheduler_name: str  # EventBridge Scheduler's name of the schedule
    group: str
    description: str | None
    expression: str  # cron(...), rate(...) or at(...)
    timezone: str
    state: str  # ENABLED | DISABLED
    overlap: str | None  # Allow | Forbid | Replace, when the previous run is still active
    definition: str | None  # the job definition each tick runs
    next_tick: str | None  # None: disabled, or it never fires again
    problem: str | None  # why it cannot tick as it stands (its input, its expression)
    last_runs: list[JobSummary]  # newest first
    links: dict[str, str]


class ScheduleList(Answer):
    schedules: list[ScheduleView]


def schedule_view(state: ScheduleState) -> ScheduleView:
    r = state.record
    return ScheduleView(
        name=state.name,
        scheduler_name=r.name,
        group=r.group,
        description=r.description,
        expression=r.expression,
        timezone=r.timezone or "UTC",
        state=r.state,
        overlap=state.tick.overlap if state.tick else None,
        definition=state.tick.job.definition if state.tick else None,
        next_tick=iso(state.next_tick),
        problem=state.problem,
        last_runs=[job_summary(j) for j in state.runs],
        links={"jobs": f"/jobs?schedule={quote(state.name, safe='')}"},
    )


class BucketView(Answer):
    start: str
    counts: dict[str, int]  # jobs created in the bucket, by their status now


class DefinitionStatsView(Answer):
    definition: str
    jobs: int
    succeeded: int
    verdicts: int  # jobs that SUCCEEDED, FAILED or TIMED_OUT (a cancel is no verdict)
    success_rate: float | None  # succeeded / verdicts
    p50_seconds: float | None  # submitted -> finished, of the finished jobs
    p95_seconds: float | None


class WaitingView(Answer):
    id: str
    definition: str
    attempt: int
    waiting_since: str
    not_before: str | None
    reason: str


class StatsView(Answer):
    since: str
    until: str
    bucket_seconds: int
    buckets: list[BucketView]
    totals: dict[str, int]
    definitions: list[DefinitionStatsView]
    waiting: list[WaitingView]  # jobs not launched yet, oldest first
    truncated: bool  # the window held more jobs than were read: the newest are counted
    now: dict[str, int]  # unfinished jobs by status now, whenever they were created
    now_capped: bool  # more unfinished jobs than the overview counts (OVERVIEW_MAX_ACTIVE)


def stats_view(o: Overview) -> StatsView:
    return StatsView(
        since=iso(o.since) or "",
        until=iso(o.until) or "",
        bucket_seconds=o.bucket_seconds,
        buckets=[BucketView(start=iso(b.start) or "", counts=b.counts) for b in o.buckets],
        totals=o.totals,
        definitions=[
            DefinitionStatsView(
                definition=d.definition,
                jobs=d.jobs,
                succeeded=d.succeeded,
                verdicts=d.verdicts,
                success_rate=d.success_rate,
                p50_seconds=d.p50_seconds,
                p95_seconds=d.p95_seconds,
            )
            for d in o.definitions
        ],
        waiting=[
            WaitingView(
                id=w.job.job_id,
                definition=w.job.definition,
                attempt=w.job.attempt,
                waiting_since=iso(w.since) or "",
                not_before=w.job.not_before,
                reason=w.reason,
            )
            for w in o.waiting
        ],
        truncated=o.truncated,
        now=o.now,
        now_capped=o.now_capped,
    )


class DefinitionView(Answer):
    """A job definition of the deployment, as a submitter chooses one (never its ARNs or
    network: those are the deployment's)."""

    name: str
    cpu: int | None  # the task's Fargate size, when configured (costs are priced on it)
    memory: int | None
    architecture: str
    allow_command_override: bool  # whether a submission may replace the container's command
    max_running: int | None  # at most this many of its jobs run at once
    timeout_seconds: int | None  # its default attempt timeout
    links: dict[str, str]


class DefinitionList(Answer):
    definitions: list[DefinitionView]


def definition_list(settings: Settings | None = None) -> DefinitionList:
    settings = settings or get_settings()
    return DefinitionList(
        definitions=[
            DefinitionView(
                name=name,
                cpu=d.cpu,
                memory=d.memory,
                architecture=d.architecture,
                allow_command_override=d.allow_command_override,
                max_running=d.max_running,
                timeout_seconds=d.timeout_seconds,
                links={"jobs": f"/jobs?definition={quote(name, safe='')}"},
            )
            for name, d in sorted(settings.job_definitions.items())
        ]
    )

"""Pydantic models of the HTTP API: its input (a submission, a cancel) and its output, and their
conversions to and from the core. Only the API loads pydantic (about 110 ms of every cold start):
the core's models are plain dataclasses, and these request models are built on their limits and
checks, then converted to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobtracker.config import JobDefinition, Settings, get_settings
from jobtracker.core import policy, submission
from jobtracker.core.cost import attempt_cost, job_cost
from jobtracker.core.diagnosis import diagnose
from jobtracker.core.domain import NAME_PATTERN, Attempt, Job, iso
from jobtracker.usecases.query import AttemptLogs

if TYPE_CHECKING:  # the views' sources only: the client imports these models without them
    from jobtracker.core.overview import Overview
    from jobtracker.usecases.schedules import ScheduleState

# ---- input ----------------------------------------------------------------------------------


class Backoff(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_seconds: float = Field(
        default=policy.DEFAULT_BACKOFF_BASE_SECONDS, ge=0, le=policy.MAX_BACKOFF_BASE_SECONDS
    )
    factor: float = Field(
        default=policy.DEFAULT_BACKOFF_FACTOR,
        ge=policy.MIN_BACKOFF_FACTOR,
        le=policy.MAX_BACKOFF_FACTOR,
    )
    cap_seconds: float = Field(
        default=policy.DEFAULT_BACKOFF_CAP_SECONDS, ge=0, le=policy.MAX_BACKOFF_CAP_SECONDS
    )
    jitter: policy.Jitter = policy.DEFAULT_JITTER

    def to_core(self) -> policy.Backoff:
        return policy.Backoff(
            base_seconds=self.base_seconds,
            factor=self.factor,
            cap_seconds=self.cap_seconds,
            jitter=self.jitter,
        )


class RetryRule(BaseModel):
    """One rule; every matcher given must match. Reason globs are case-insensitive."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=policy.MAX_RULE_NAME)] | None = None
    exit_codes: (
        Annotated[
            list[Annotated[int, Field(ge=0, le=policy.MAX_EXIT_CODE)]],
            Field(max_length=policy.MAX_EXIT_CODES),
        ]
        | None
    ) = None
    no_exit_code: bool | None = None
    stop_codes: (
        Annotated[
            list[Annotated[str, Field(max_length=policy.MAX_STOP_CODE)]],
            Field(max_length=policy.MAX_STOP_CODES),
        ]
        | None
    ) = None
    reason: Annotated[str, Field(min_length=1, max_length=policy.MAX_REASON)] | None = None
    action: policy.Action

    @model_validator(mode="after")
    def _core_rules(self) -> RetryRule:
        self.to_core()  # the rules across fields (a rule needs a matcher) are the core's
        return self

    def to_core(self) -> policy.RetryRule:
        return policy.RetryRule(
            name=self.name,
            exit_codes=self.exit_codes,
            no_exit_code=self.no_exit_code,
            stop_codes=self.stop_codes,
            reason=self.reason,
            action=self.action,
        )


class RetryOverrides(BaseModel):
    """Per-job overrides from POST /jobs; rules given here are evaluated before the defaults."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = Field(default=None, ge=policy.MIN_ATTEMPTS, le=policy.MAX_ATTEMPTS)
    max_uncounted: int | None = Field(default=None, ge=0, le=policy.MAX_UNCOUNTED)
    backoff: Backoff | None = None
    rules: Annotated[list[RetryRule], Field(max_length=policy.MAX_RULES)] | None = None
    replace_default_rules: bool = False

    def to_core(self) -> policy.RetryOverrides:
        return policy.RetryOverrides(
            max_attempts=self.max_attempts,
            max_uncounted=self.max_uncounted,
            backoff=self.backoff.to_core() if self.backoff else None,
            rules=None if self.rules is None else [r.to_core() for r in self.rules],
            replace_default_rules=self.replace_default_rules,
        )


def _valid(error: str | None) -> None:
    if error:
        raise ValueError(error)


# POST /jobs' body (no docstring: it would be the OpenAPI schema's description). The job is made
# from its core twin, core/submission.py's Submission.
class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: Annotated[str, Field(pattern=NAME_PATTERN)]
    command: (
        Annotated[
            list[Annotated[str, Field(max_length=submission.MAX_ARG_LENGTH)]],
            Field(max_length=submission.MAX_COMMAND_ARGS),
        ]
        | None
    ) = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Annotated[str, Field(max_length=submission.MAX_ENV_VALUE_LENGTH)]] = (
        Field(default_factory=dict)
    )
    timeout_seconds: int | None = Field(default=None, ge=1, le=submission.MAX_TIMEOUT_SECONDS)
    start_timeout_seconds: int | None = Field(
        default=None, ge=1, le=submission.MAX_START_TIMEOUT_SECONDS
    )
    queue_timeout_seconds: int | None = Field(
        default=None, ge=1, le=submission.MAX_QUEUE_TIMEOUT_SECONDS
    )
    retry: RetryOverrides | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("command")
    @classmethod
    def _command(cls, value: list[str] | None) -> list[str] | None:
        _valid(submission.command_error(value))
        return value

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, str]) -> dict[str, str]:
        _valid(submission.environment_error(value))
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        _valid(submission.tags_error(value))
        return value

    def to_core(self) -> submission.Submission:
        return submission.Submission(
            definition=self.definition,
            command=self.command,
            parameters=self.parameters,
            environment=self.environment,
            timeout_seconds=self.timeout_seconds,
            start_timeout_seconds=self.start_timeout_seconds,
            queue_timeout_seconds=self.queue_timeout_seconds,
            retry=self.retry.to_core() if self.retry else None,
            tags=self.tags,
        )


# ---- output ---------------------------------------------------------------------------------

USD_DECIMALS = 6  # a millionth of a dollar: a 0.25 vCPU task's minimum minute is $0.0002


class ContainerView(BaseModel):
    name: str
    exit_code: int | None
    reason: str | None


class StateView(BaseModel):
    status: str
    version: int
    at: str | None
    desired_status: str | None = None
    stop_code: str | None = None
    source: str | None = None


class LogsLink(BaseModel):
    group: str
    stream: str
    console_url: str


class AttemptView(BaseModel):
    number: int
    task_arn: str | None
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


class JobView(BaseModel):
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


class JobSummary(BaseModel):
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


class JobList(BaseModel):
    jobs: list[JobSummary]
    next_token: str | None


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=512)] | None = None


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


def _usd(amount: float | None) -> float | None:
    return None if amount is None else round(amount, USD_DECIMALS)


def _attempt_view(a: Attempt, definition: JobDefinition | None, region: str) -> AttemptView:
    return AttemptView(
        number=a.number,
        task_arn=a.task_arn,
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


def _links(job_id: str) -> dict[str, str]:
    return {
        "self": f"/jobs/{job_id}",
        "cancel": f"/jobs/{job_id}/cancel",
        "logs": f"/jobs/{job_id}/logs",
    }


def _effective_retry(job: Job, settings: Settings) -> dict[str, Any]:
    """The policy the job runs under (the job stores only its own overrides)."""
    from jobtracker.core.lifecycle import policy_of

    return policy_of(job, settings).to_dict()


def job_view(job: Job, settings: Settings | None = None) -> JobView:
    settings = settings or get_settings()
    # Costs are priced on the definition as configured now (None once it is removed).
    definition = settings.job_definitions.get(job.definition)
    attempts = [job.attempts[n] for n in sorted(job.attempts)]
    return JobView(
        id=job.job_id,
        definition=job.definition,
        status=job.status.value,
        status_reason=job.status_reason,
        attempt=job.attempt,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        not_before=job.not_before,
        launch_error=job.launch_error,
        command=job.spec.command,
        parameters=job.spec.parameters,
        environment=job.spec.environment,
        timeout_seconds=job.spec.timeout_seconds,
        start_timeout_seconds=job.spec.start_timeout_seconds,
        queue_timeout_seconds=job.spec.queue_timeout_seconds,
        retry=_effective_retry(job, settings),
        retry_overrides=job.spec.retry,
        tags=job.spec.tags,
        schedule=job.schedule_name,
        scheduled_time=job.scheduled_time,
        attempts=[_attempt_view(a, definition, settings.region) for a in attempts],
        cost_usd=_usd(job_cost(attempts, definition)),
        links=_links(job.job_id),
    )


def job_summary(job: Job) -> JobSummary:
    return JobSummary(
        id=job.job_id,
        definition=job.definition,
        status=job.status.value,
        status_reason=job.status_reason,
        attempt=job.attempt,
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=current.started_at if (current := job.attempts.get(job.attempt)) else None,
        finished_at=job.finished_at,
        schedule=job.schedule_name,
        links=_links(job.job_id),
    )


class LogLine(BaseModel):
    at: str
    message: str


class LogsView(BaseModel):
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


class ScheduleView(BaseModel):
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


class ScheduleList(BaseModel):
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


class BucketView(BaseModel):
    start: str
    counts: dict[str, int]  # jobs created in the bucket, by their status now


class DefinitionStatsView(BaseModel):
    definition: str
    jobs: int
    succeeded: int
    verdicts: int  # jobs that SUCCEEDED, FAILED or TIMED_OUT (a cancel is no verdict)
    success_rate: float | None  # succeeded / verdicts
    p50_seconds: float | None  # submitted -> finished, of the finished jobs
    p95_seconds: float | None


class WaitingView(BaseModel):
    id: str
    definition: str
    attempt: int
    waiting_since: str
    not_before: str | None
    reason: str


class StatsView(BaseModel):
    since: str
    until: str
    bucket_seconds: int
    buckets: list[BucketView]
    totals: dict[str, int]
    definitions: list[DefinitionStatsView]
    waiting: list[WaitingView]  # jobs not launched yet, oldest first
    truncated: bool  # the window held more jobs than were read: the newest are counted


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
    )


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorView(BaseModel):
    """The one shape every error is answered with."""

    error: ErrorDetail

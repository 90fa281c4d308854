"""The HTTP API's request bodies as pydantic models: the one place their rules live. The
resolver (edge/api.py, `enable_validation=True`) checks every request with them, the OpenAPI
document is generated from them, and a schedule's tick and the deployment's retry settings are
checked by the same models. Each converts to its core twin (plain dataclasses: the domain knows
nothing of pydantic). The limits are the core's data (core/submission.py, core/policy.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic import model_validator as _model_validator

from jobtracker.core import arrays, dependencies, policy, submission
from jobtracker.core.checks import Invalid
from jobtracker.core.domain import NAME_PATTERN

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class Strict(BaseModel):
    """Unknown fields are refused: a misspelt field must not be silently dropped. Built when
    first used (a function checks one or two of these bodies, not all)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class Backoff(Strict):
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
        return policy.Backoff(**self.model_dump())


class RetryRule(Strict):
    """One rule; every matcher given must match. Reason globs are case-insensitive."""

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

    @_model_validator(mode="after")
    def _needs_a_matcher(self) -> RetryRule:
        if not policy.has_matcher(self.exit_codes, self.stop_codes, self.reason, self.no_exit_code):
            raise ValueError(policy.NO_MATCHER)
        return self

    def to_core(self) -> policy.RetryRule:
        return policy.RetryRule(**self.model_dump())


class RetryOverrides(Strict):
    """Per-job overrides from POST /jobs; rules given here are evaluated before the defaults."""

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


class ArrayRequest(Strict):
    """An array job: `size` children, each told its index (JOB_ARRAY_INDEX, 0-based) and the
    size (JOB_ARRAY_SIZE); at most `max_running` of them at once; the parent fails once more
    than `tolerated_failures` (or `tolerated_failure_percent` of the size) end FAILED or
    TIMED_OUT."""

    size: int = Field(ge=arrays.MIN_ARRAY_SIZE, le=arrays.MAX_ARRAY_SIZE)
    max_running: int | None = Field(default=None, ge=1, le=arrays.MAX_ARRAY_SIZE)
    tolerated_failures: int | None = Field(default=None, ge=0, le=arrays.MAX_ARRAY_SIZE)
    tolerated_failure_percent: float | None = Field(default=None, ge=0, le=100)
    # Child i waits for child i-1 to end as sequential_condition says (one at a time).
    sequential: bool = False
    sequential_condition: dependencies.Condition | None = None

    @field_validator(
        "max_running",
        "tolerated_failures",
        "tolerated_failure_percent",
        "sequential",
        "sequential_condition",
    )
    @classmethod
    def _fits(cls, value: Any, info: ValidationInfo) -> Any:
        # The core's rules across the fields (core.arrays.spec_error), each error on the field
        # it names: fields are checked in order, so each sees the ones before it.
        if value is None or value is False or "size" not in info.data:
            return value
        fields: dict[str, Any] = {**info.data, str(info.field_name): value}
        spec = arrays.ArraySpec(**fields)
        error = arrays.spec_error(spec)
        if error is not None and error[0] == info.field_name:
            raise ValueError(error[1])
        return value

    def to_core(self) -> arrays.ArraySpec:
        return arrays.ArraySpec(**self.model_dump())


class DependencyRequest(Strict):
    """A job this one waits on: it launches once `job_id` ends as `condition` says
    (succeeded; finished: any final status; failed: FAILED or TIMED_OUT), and is CANCELLED
    the moment it cannot. `per_index`: an array on an array of its size, child i on child i."""

    job_id: Annotated[str, Field(min_length=1, max_length=128)]
    condition: dependencies.Condition = dependencies.Condition.SUCCEEDED
    mode: Literal["job", "per_index"] = "job"

    def to_core(self) -> dependencies.Dependency:
        return dependencies.Dependency(self.job_id, self.condition, dependencies.Mode(self.mode))


Argument = Annotated[str, Field(max_length=submission.MAX_ARG_LENGTH)]
EnvValue = Annotated[str, Field(max_length=submission.MAX_ENV_VALUE_LENGTH)]


# POST /jobs' body (no docstring: it would be the OpenAPI schema's description).
class JobSubmission(Strict):
    definition: Name
    command: Annotated[list[Argument], Field(max_length=submission.MAX_COMMAND_ARGS)] | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, EnvValue] = Field(default_factory=dict)
    timeout_seconds: int | None = Field(default=None, ge=1, le=submission.MAX_TIMEOUT_SECONDS)
    start_timeout_seconds: int | None = Field(
        default=None, ge=1, le=submission.MAX_START_TIMEOUT_SECONDS
    )
    queue_timeout_seconds: int | None = Field(
        default=None, ge=1, le=submission.MAX_QUEUE_TIMEOUT_SECONDS
    )
    retry: RetryOverrides | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    array: ArrayRequest | None = None
    depends_on: (
        Annotated[list[DependencyRequest], Field(max_length=dependencies.MAX_DEPENDENCIES)] | None
    ) = None

    @field_validator("depends_on")
    @classmethod
    def _once_each(cls, value: list[DependencyRequest] | None) -> list[DependencyRequest] | None:
        _valid(dependencies.repeated([d.job_id for d in value or ()]))
        return value

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
        values = {name: getattr(self, name) for name in submission.SUBMISSION_FIELDS}
        values["retry"] = self.retry.to_core() if self.retry else None
        values["array"] = self.array.to_core() if self.array else None
        values["depends_on"] = [d.to_core() for d in self.depends_on] if self.depends_on else None
        return submission.Submission(**values)


class CancelRequest(Strict):
    reason: Annotated[str, Field(max_length=submission.MAX_CANCEL_REASON)] | None = None


# The input a schedule hands create_job (see template.yaml): its job is checked by
# the same model as POST /jobs' body.
class TickInput(Strict):
    schedule: Name
    scheduled_time: Annotated[str, Field(min_length=10, max_length=40)]
    overlap: submission.Overlap = "Allow"
    job: JobSubmission

    @field_validator("job")
    @classmethod
    def _no_dependencies(cls, value: JobSubmission) -> JobSubmission:
        if value.depends_on:
            raise ValueError(dependencies.NOT_ON_A_SCHEDULE)
        return value

    def to_core(self) -> submission.ScheduledRun:
        return submission.ScheduledRun(
            schedule=self.schedule,
            scheduled_time=self.scheduled_time,
            overlap=self.overlap,
            job=self.job.to_core(),
        )


# ---- errors --------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorView(BaseModel):
    """The one shape every error the API's functions answer is given."""

    error: ErrorDetail


class GatewayError(BaseModel):
    """API Gateway's own answer when IAM authorization refuses a request (403): it never
    reaches the functions, so it has API Gateway's shape."""

    message: str


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's error location as the dotted field name the API's errors use."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def field_errors(exc: ValidationError | list[Any]) -> list[dict[str, str]]:
    """Each of pydantic's errors as {"field", "message"}."""
    errors = exc.errors() if isinstance(exc, ValidationError) else exc
    found = []
    for e in errors:
        kind = e.get("type")
        message = str(e.get("msg", "invalid"))
        if kind == "missing":
            message = "field required"
        elif kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        found.append({"field": field_name(e.get("loc", ())), "message": message})
    return found


def parse(model: type[Strict], data: object) -> Any:
    """`data` as `model`, or the core's Invalid naming the first field at fault (where a
    function outside the HTTP API, a tick or the configuration, checks with these models)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = field_errors(exc)[0]
        name = "" if first["field"] == "body" else first["field"]
        raise Invalid(name, first["message"]) from None


def scheduled_run(data: object) -> submission.ScheduledRun:
    """A schedule's input, checked; raises the core's Invalid naming the field at fault."""
    run: TickInput = parse(TickInput, data)
    return run.to_core()

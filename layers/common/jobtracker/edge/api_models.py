"""The HTTP API's request bodies as pydantic models: the contract `make openapi` publishes. The
API functions themselves check a body with
the core's models (core/submission.py, core/policy.py: no pydantic, which would cost their cold
start more than everything else they load); these models are built on the same limits and
checks, and `tests/unit/test_models.py` holds both to the same answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from jobtracker.core import policy, submission
from jobtracker.core.domain import NAME_PATTERN


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


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=submission.MAX_CANCEL_REASON)] | None = None


# The shape of every error answer (edge/api.py's ApiError.body() writes it as plain data).


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

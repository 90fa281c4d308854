"""Pydantic models of the HTTP API's input and output, and conversions from the domain."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobtracker.config import Settings
from jobtracker.domain import Attempt, Job
from jobtracker.policy import RetryOverrides

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED_ENV_PREFIXES = ("JOB_", "AWS_", "ECS_")
# Overrides show up in every ECS event and DescribeTasks answer: secrets belong in the task
# definition's `secrets` (Secrets Manager / SSM), never here.
SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|CREDENTIAL|API_KEY)", re.IGNORECASE
)
# ECS tag rules: letters, digits, spaces and _ . : / = + - @; the aws: prefix is reserved.
TAG_CHARS = re.compile(r"^[\w .:/=+\-@]*$", re.UNICODE)
OUR_TAGS = ("jobtracker:job-id", "jobtracker:definition", "jobtracker:attempt")
MAX_USER_TAGS = 50 - len(OUR_TAGS)

Definition = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: Definition
    command: (
        Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=64)] | None
    ) = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict)
    timeout_seconds: int | None = Field(default=None, ge=1, le=14 * 24 * 3600)
    start_timeout_seconds: int | None = Field(default=None, ge=1, le=24 * 3600)
    retry: RetryOverrides | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 50:
            raise ValueError("at most 50 environment variables")
        for name in value:
            if not ENV_NAME.match(name):
                raise ValueError(
                    f"invalid name {name!r}: letters, digits and _, not starting with a digit"
                )
            if name.upper().startswith(RESERVED_ENV_PREFIXES):
                raise ValueError(
                    f"name {name!r} is reserved (prefixes {', '.join(RESERVED_ENV_PREFIXES)})"
                )
            if SECRET_NAME.search(name):
                raise ValueError(
                    f"{name!r} looks like a secret: environment overrides appear in every ECS "
                    "event; use the task definition's secrets (Secrets Manager or SSM) instead"
                )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_USER_TAGS:
            raise ValueError(f"at most {MAX_USER_TAGS} tags")
        for key, tag_value in value.items():
            if not 1 <= len(key) <= 128:
                raise ValueError(f"tag key {key[:40]!r} must be 1-128 characters")
            if len(tag_value) > 256:
                raise ValueError(f"tag {key!r}: value longer than 256 characters")
            if key.lower().startswith(("aws:", "jobtracker:")):
                raise ValueError(f"tag key {key!r} uses a reserved prefix (aws:, jobtracker:)")
            if not TAG_CHARS.match(key) or not TAG_CHARS.match(tag_value):
                raise ValueError(
                    f"tag {key!r}: only letters, digits, spaces and _ . : / = + - @ are allowed"
                )
        return value


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
    counted: bool
    spot_interruption_at: str | None
    log_stream: str | None
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
    retry: dict[str, Any]
    tags: dict[str, str]
    schedule: str | None
    scheduled_time: str | None
    attempts: list[AttemptView]
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


class JobList(BaseModel):
    jobs: list[JobSummary]
    next_token: str | None


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=512)] | None = None


def _attempt_view(a: Attempt) -> AttemptView:
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
        counted=not a.uncounted,
        spot_interruption_at=a.spot_interruption_at,
        log_stream=a.log_stream,
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
    return {"self": f"/jobs/{job_id}", "cancel": f"/jobs/{job_id}/cancel"}


def _effective_retry(job: Job, settings: Settings | None) -> dict[str, Any]:
    """The policy the job runs under (the job stores only its own overrides)."""
    from jobtracker.config import get_settings
    from jobtracker.lifecycle import policy_of

    return policy_of(job, settings or get_settings()).model_dump(mode="json", exclude_none=True)


def job_view(job: Job, settings: Settings | None = None) -> JobView:
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
        retry=_effective_retry(job, settings),
        tags=job.spec.tags,
        schedule=job.schedule_name,
        scheduled_time=job.scheduled_time,
        attempts=[_attempt_view(job.attempts[n]) for n in sorted(job.attempts)],
        links=_links(job.job_id),
    )


def job_summary(job: Job) -> JobSummary:
    return JobSummary(
        id=job.job_id,
        definition=job.definition,
        status=job.status.value,
        attempt=job.attempt,
        created_at=job.created_at,
        updated_at=job.updated_at,
        schedule=job.schedule_name,
        links=_links(job.job_id),
    )

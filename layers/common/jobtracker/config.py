"""Validated settings, read lazily from the environment through a cached getter.

Nothing here runs at import time, so tests (and the local stack) set the environment first and
call `reset_settings()` when they change it.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jobtracker.core.cost import fargate_size_error
from jobtracker.core.domain import TERMINAL_STATUSES, JobStatus
from jobtracker.core.policy import RetryOverrides, RetryPolicy, default_policy

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class CapacityProvider(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capacity_provider: str
    weight: int = Field(default=1, ge=0, le=1000)
    base: int = Field(default=0, ge=0, le=100000)


class JobDefinition(BaseModel):
    """A deployment-configured way to run jobs. Users pick one by name; never a raw ARN."""

    model_config = ConfigDict(extra="forbid")

    task_definition: Annotated[str, Field(min_length=1)]
    container: Annotated[str, Field(min_length=1)]
    cluster: Annotated[str, Field(min_length=1)]
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    assign_public_ip: bool = False
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = "FARGATE"
    capacity_provider_strategy: list[CapacityProvider] | None = None
    platform_version: str | None = None
    essential_containers: list[str] | None = None
    log_group: str | None = None
    log_stream_prefix: str | None = None
    timeout_seconds: int | None = Field(default=None, ge=1)
    start_timeout_seconds: int | None = Field(default=None, ge=1)
    stop_timeout_seconds: int = Field(default=30, ge=2, le=120)
    retry: RetryOverrides | None = None
    # Whether a submission may replace the container's command: off unless the deployment says
    # so, since a command runs with the definition's task role.
    allow_command_override: bool = False
    # The task definition's Fargate size (CPU units, memory MiB) and CPU architecture, which the
    # API prices each attempt's estimated cost on (core/cost.py). Optional: no size, no cost.
    cpu: int | None = None
    memory: int | None = None
    architecture: Literal["X86_64", "ARM64"] = "X86_64"

    @field_validator("subnets", "security_groups", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # CloudFormation hands lists over as one comma-joined string.
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _fargate_size(self) -> JobDefinition:
        if self.cpu is None and self.memory is None:
            return self
        if self.cpu is None or self.memory is None:
            raise ValueError("cpu and memory go together: give both or neither")
        error = fargate_size_error(self.cpu, self.memory)
        if error:
            raise ValueError(error)
        return self

    @property
    def deciding_containers(self) -> list[str]:
        return self.essential_containers or [self.container]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table_name: Annotated[str, Field(min_length=1)]
    job_definitions: dict[Annotated[str, Field(pattern=NAME_PATTERN)], JobDefinition]
    launch_queue_url: str | None = None
    retry_queue_url: str | None = None
    event_dlq_url: str | None = None  # events and ticks a function could not handle
    notify_retry_queue_url: str | None = None  # job changes the bus or SNS refused, for later
    event_bus_name: str = "default"
    schedule_group: str | None = None  # the EventBridge Scheduler group of the job schedules
    region: str = "us-east-1"  # where the stack runs: console links name it
    job_topic_arn: str | None = None
    default_retry: RetryPolicy = Field(default_factory=default_policy)
    # Multiplies every backoff wait: 1 in production; the local stack and e2e tests use less.
    backoff_scale: float = Field(default=1.0, ge=0, le=10)
    # The account's launch rate (Fargate: 20 task launches a second, bursts of 100), shared by
    # every launcher through the governor.
    launch_rate: float = Field(default=20.0, gt=0, le=1000)
    launch_burst: int = Field(default=100, ge=1, le=10000)
    max_launch_failures: int = Field(default=8, ge=1, le=100)
    launch_backoff_base_seconds: float = Field(default=5.0, ge=0, le=900)
    launch_backoff_cap_seconds: float = Field(default=300.0, ge=0, le=3600)
    quiet_after_seconds: int = Field(default=300, ge=10)
    decision_grace_seconds: int = Field(default=120, ge=1)
    default_start_timeout_seconds: int = Field(default=900, ge=1)
    retention_days: int | None = Field(default=None, ge=1)
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    tracing: bool = False
    # Which statuses are published as "Job State Change" (EventBridge bills each custom event:
    # every status change would cost $4 per million successful jobs, the terminal ones $1).
    notify_statuses: frozenset[str] = frozenset(s.value for s in TERMINAL_STATUSES)


class ConfigError(RuntimeError):
    pass


def _statuses(value: str) -> frozenset[str]:
    """NOTIFY_STATUSES: "ALL" or a comma-separated list of job statuses."""
    every = {s.value for s in JobStatus}
    if value.strip().upper() == "ALL":
        return frozenset(every)
    names = {v.strip().upper() for v in value.split(",") if v.strip()}
    unknown = names - every
    if unknown:
        raise ConfigError(f"NOTIFY_STATUSES: unknown status {sorted(unknown)}")
    return frozenset(names)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    data: dict[str, object] = {
        "table_name": env.get("TABLE_NAME", ""),
        "job_definitions": json.loads(env.get("JOB_DEFINITIONS", "{}") or "{}"),
        "launch_queue_url": env.get("LAUNCH_QUEUE_URL") or None,
        "retry_queue_url": env.get("RETRY_QUEUE_URL") or None,
        "event_dlq_url": env.get("EVENT_DLQ_URL") or None,
        "notify_retry_queue_url": env.get("NOTIFY_RETRY_QUEUE_URL") or None,
        "event_bus_name": env.get("EVENT_BUS_NAME") or "default",
        "schedule_group": env.get("SCHEDULE_GROUP") or None,
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "job_topic_arn": env.get("JOB_TOPIC_ARN") or None,
        "tracing": env.get("JOBTRACKER_TRACING", "false").lower() == "true",
    }
    if env.get("NOTIFY_STATUSES"):
        data["notify_statuses"] = _statuses(env["NOTIFY_STATUSES"])
    optional_numbers = {
        "BACKOFF_SCALE": "backoff_scale",
        "MAX_LAUNCH_FAILURES": "max_launch_failures",
        "LAUNCH_RATE": "launch_rate",
        "LAUNCH_BURST": "launch_burst",
        "LAUNCH_BACKOFF_BASE_SECONDS": "launch_backoff_base_seconds",
        "LAUNCH_BACKOFF_CAP_SECONDS": "launch_backoff_cap_seconds",
        "QUIET_AFTER_SECONDS": "quiet_after_seconds",
        "DECISION_GRACE_SECONDS": "decision_grace_seconds",
        "DEFAULT_START_TIMEOUT_SECONDS": "default_start_timeout_seconds",
        "RETENTION_DAYS": "retention_days",
    }
    for var, key in optional_numbers.items():
        if env.get(var):
            data[key] = env[var]
    if env.get("DEFAULT_RETRY_POLICY"):
        base = default_policy()
        overrides = RetryOverrides.model_validate(json.loads(env["DEFAULT_RETRY_POLICY"]))
        data["default_retry"] = base.with_overrides(overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid jobtracker configuration: {exc}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    get_settings.cache_clear()

"""What a job is submitted with: the request every job is made from (POST /jobs, a schedule's
tick). The rules a submission must meet for ECS are here as data (the limits) and functions
(the checks across items); the API's request model (edge/api_models.py) applies them, checks
every request with them and converts to a Submission, a plain dataclass."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from jobtracker.core.arrays import ArraySpec
from jobtracker.core.checks import plain
from jobtracker.core.dependencies import Dependency
from jobtracker.core.policy import RetryOverrides

MAX_COMMAND_ARGS = 64
MAX_ARG_LENGTH = 4096
MAX_ENV_VARS = 50
MAX_ENV_VALUE_LENGTH = 4096
MAX_TIMEOUT_SECONDS = 14 * 24 * 3600
MAX_START_TIMEOUT_SECONDS = 24 * 3600
MAX_QUEUE_TIMEOUT_SECONDS = 14 * 24 * 3600

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


def command_error(value: list[str] | None) -> str | None:
    for i, arg in enumerate(value or []):
        if "\x00" in arg:
            return f"item {i} contains a NUL byte, which no process argument can carry"
    return None


def environment_error(value: dict[str, str]) -> str | None:
    if len(value) > MAX_ENV_VARS:
        return f"at most {MAX_ENV_VARS} environment variables"
    for name in value:
        if not ENV_NAME.match(name):
            return f"invalid name {name!r}: letters, digits and _, not starting with a digit"
        if name.upper().startswith(RESERVED_ENV_PREFIXES):
            return f"name {name!r} is reserved (prefixes {', '.join(RESERVED_ENV_PREFIXES)})"
        if "\x00" in value[name]:
            return f"{name}: contains a NUL byte, which no environment can carry"
        if SECRET_NAME.search(name):
            return (
                f"{name!r} looks like a secret: environment overrides appear in every ECS "
                "event; use the task definition's secrets (Secrets Manager or SSM) instead"
            )
    return None


def tags_error(value: dict[str, str]) -> str | None:
    if len(value) > MAX_USER_TAGS:
        return f"at most {MAX_USER_TAGS} tags"
    for key, tag_value in value.items():
        if not 1 <= len(key) <= 128:
            return f"tag key {key[:40]!r} must be 1-128 characters"
        if len(tag_value) > 256:
            return f"tag {key!r}: value longer than 256 characters"
        if key.lower().startswith(("aws:", "jobtracker:")):
            return f"tag key {key!r} uses a reserved prefix (aws:, jobtracker:)"
        if not TAG_CHARS.match(key) or not TAG_CHARS.match(tag_value):
            return f"tag {key!r}: only letters, digits, spaces and _ . : / = + - @ are allowed"
    return None


@dataclass(frozen=True, kw_only=True)
class Submission:
    """A checked POST /jobs body, as the domain takes it."""

    definition: str
    command: list[str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    start_timeout_seconds: int | None = None
    # How long an attempt may wait for launch capacity (throttling, RESOURCE:*, no Fargate
    # capacity) before the job fails; unset, it waits as long as it takes.
    queue_timeout_seconds: int | None = None
    retry: RetryOverrides | None = None
    tags: dict[str, str] = field(default_factory=dict)
    array: ArraySpec | None = None  # the job is an array of this many children
    depends_on: list[Dependency] | None = None  # it waits for these jobs (core/dependencies.py)

    def to_dict(self) -> dict[str, Any]:
        """Every field but the unset ones: what an Idempotency-Key's body hash is taken of."""
        return plain(self)


SUBMISSION_FIELDS = frozenset(Submission.__dataclass_fields__)


MAX_CANCEL_REASON = 512


# What a schedule does when its previous run is still active.
Overlap = Literal["Allow", "Forbid", "Replace"]


@dataclass(frozen=True, kw_only=True)
class ScheduledRun:
    """The input a schedule hands create_job (see template.yaml)."""

    schedule: str
    scheduled_time: str
    overlap: Overlap = "Allow"
    job: Submission

    def to_dict(self) -> dict[str, Any]:
        return plain(self)


def fill_scheduler_placeholders(
    text: str, scheduled_time: datetime, schedule_arn: str, execution_id: str
) -> str:
    """A schedule's input as EventBridge Scheduler delivers it: its context attributes
    (<aws.scheduler.scheduled-time> and the others) filled in. Run now and the local stack
    fire a schedule themselves, and fill them in as Scheduler does."""
    for name, value in (
        ("scheduled-time", scheduled_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("execution-id", execution_id),
        ("schedule-arn", schedule_arn),
        ("attempt-number", "1"),
    ):
        text = text.replace(f"<aws.scheduler.{name}>", value)
    return text

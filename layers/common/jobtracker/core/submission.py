"""What a job is submitted with: the request every job is made from (POST /jobs, a schedule's
tick), validated as ECS will need it. The API's request model (edge/api_models.py) is built on
the limits and checks here and converts to a Submission."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from jobtracker.core.checks import (
    Invalid,
    fields,
    integer,
    mapping,
    optional,
    plain,
    store,
    text,
    text_map,
    texts,
    within,
)
from jobtracker.core.domain import NAME_PATTERN
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

    def __post_init__(self) -> None:
        text(self.definition, "definition", pattern=NAME_PATTERN)
        if self.command is not None:
            command = texts(self.command, "command", MAX_COMMAND_ARGS, MAX_ARG_LENGTH)
            _check("command", command_error(command))
            store(self, "command", command)
        store(self, "parameters", mapping(self.parameters, "parameters"))
        environment = text_map(self.environment, "environment", MAX_ENV_VALUE_LENGTH)
        _check("environment", environment_error(environment))
        store(self, "environment", environment)
        for name, limit in (
            ("timeout_seconds", MAX_TIMEOUT_SECONDS),
            ("start_timeout_seconds", MAX_START_TIMEOUT_SECONDS),
            ("queue_timeout_seconds", MAX_QUEUE_TIMEOUT_SECONDS),
        ):
            store(self, name, optional(integer, getattr(self, name), name, ge=1, le=limit))
        if self.retry is not None and not isinstance(self.retry, RetryOverrides):
            with within("retry"):
                store(self, "retry", RetryOverrides.from_dict(self.retry))
        tags = text_map(self.tags, "tags")
        _check("tags", tags_error(tags))
        store(self, "tags", tags)

    @classmethod
    def from_dict(cls, data: object) -> Submission:
        """From JSON (a schedule's input)."""
        return cls(**fields(data, SUBMISSION_FIELDS, required=("definition",)))

    def to_dict(self) -> dict[str, Any]:
        """Every field but the unset ones: what an Idempotency-Key's body hash is taken of."""
        return plain(self)


SUBMISSION_FIELDS = frozenset(Submission.__dataclass_fields__)


def _check(name: str, error: str | None) -> None:
    if error:
        raise Invalid(name, error)


MAX_CANCEL_REASON = 512


@dataclass(frozen=True, kw_only=True)
class CancelRequest:
    """POST /jobs/{id}/cancel's optional body."""

    reason: str | None = None

    def __post_init__(self) -> None:
        reason = optional(text, self.reason, "reason", max_length=MAX_CANCEL_REASON)
        store(self, "reason", reason)

    @classmethod
    def from_dict(cls, data: object) -> CancelRequest:
        return cls(**fields(data, frozenset({"reason"})))

"""What a job is submitted with: the request every job is made from (POST /jobs, a schedule's
tick), validated as ECS will need it."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jobtracker.core.policy import RetryOverrides

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
    # How long an attempt may wait for launch capacity (throttling, RESOURCE:*, no Fargate
    # capacity) before the job fails; unset, it waits as long as it takes.
    queue_timeout_seconds: int | None = Field(default=None, ge=1, le=14 * 24 * 3600)
    retry: RetryOverrides | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("command")
    @classmethod
    def _command_carriable(cls, value: list[str] | None) -> list[str] | None:
        for i, arg in enumerate(value or []):
            if "\x00" in arg:
                raise ValueError(
                    f"item {i} contains a NUL byte, which no process argument can carry"
                )
        return value

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
            if "\x00" in value[name]:
                raise ValueError(f"{name}: contains a NUL byte, which no environment can carry")
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

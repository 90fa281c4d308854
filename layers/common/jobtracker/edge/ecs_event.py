"""Typed model of the "ECS Task State Change" EventBridge event, and its conversion.

Unknown extra fields are tolerated (ECS adds fields over time); the fields the tracker needs
are typed and checked, so a malformed event fails here, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobtracker.core.domain import ContainerState, TaskState


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class EnvVar(_Lenient):
    name: str
    value: str = ""


class ContainerOverride(_Lenient):
    name: str | None = None
    command: list[str] | None = None
    environment: list[EnvVar] = Field(default_factory=list)


class Overrides(_Lenient):
    container_overrides: list[ContainerOverride] = Field(
        default_factory=list, alias="containerOverrides"
    )


class EventContainer(_Lenient):
    name: str
    exit_code: int | None = Field(default=None, alias="exitCode")
    reason: str | None = None
    last_status: str | None = Field(default=None, alias="lastStatus")
    container_arn: str | None = Field(default=None, alias="containerArn")


class TaskDetail(_Lenient):
    task_arn: str = Field(alias="taskArn", min_length=1)
    cluster_arn: str = Field(alias="clusterArn", min_length=1)
    task_definition_arn: str | None = Field(default=None, alias="taskDefinitionArn")
    last_status: str = Field(alias="lastStatus", min_length=1)
    desired_status: str | None = Field(default=None, alias="desiredStatus")
    version: int = Field(ge=0)
    started_by: str | None = Field(default=None, alias="startedBy")
    group: str | None = None
    stop_code: str | None = Field(default=None, alias="stopCode")
    stopped_reason: str | None = Field(default=None, alias="stoppedReason")
    launch_type: str | None = Field(default=None, alias="launchType")
    capacity_provider_name: str | None = Field(default=None, alias="capacityProviderName")
    created_at: str | None = Field(default=None, alias="createdAt")
    pull_started_at: str | None = Field(default=None, alias="pullStartedAt")
    pull_stopped_at: str | None = Field(default=None, alias="pullStoppedAt")
    started_at: str | None = Field(default=None, alias="startedAt")
    stopping_at: str | None = Field(default=None, alias="stoppingAt")
    execution_stopped_at: str | None = Field(default=None, alias="executionStoppedAt")
    stopped_at: str | None = Field(default=None, alias="stoppedAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")
    availability_zone: str | None = Field(default=None, alias="availabilityZone")
    containers: list[EventContainer] = Field(default_factory=list)
    overrides: Overrides = Field(default_factory=Overrides)


class EcsTaskStateChange(_Lenient):
    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    time: str | None = None
    region: str | None = None
    account: str | None = None
    detail: TaskDetail


@dataclass(frozen=True)
class Correlated:
    """An event tied to the job and attempt it belongs to."""

    event_id: str
    job_id: str
    attempt: int
    cluster_arn: str
    state: TaskState
    definition: str | None = None  # JOB_DEFINITION, set at launch (users cannot set JOB_*)


class ForeignEvent(ValueError):
    """Well-formed, but not about one of our jobs."""


def parse_event(raw: dict[str, Any]) -> EcsTaskStateChange:
    """Raises pydantic.ValidationError on a malformed event."""
    return EcsTaskStateChange.model_validate(raw)


def _job_env(detail: TaskDetail) -> dict[str, str]:
    env: dict[str, str] = {}
    for override in detail.overrides.container_overrides:
        for var in override.environment:
            if var.name.startswith("JOB_"):
                env.setdefault(var.name, var.value)
    return env


def correlate(event: EcsTaskStateChange) -> Correlated:
    """Find job and attempt: the env overrides we set at launch (tags are not in events)."""
    if event.source != "aws.ecs" or event.detail_type != "ECS Task State Change":
        raise ForeignEvent(f"not an ECS task state change: {event.source}/{event.detail_type}")
    detail = event.detail
    env = _job_env(detail)
    job_id = env.get("JOB_ID")
    attempt_raw = env.get("JOB_ATTEMPT", "")
    if not job_id or not attempt_raw.isdigit():
        raise ForeignEvent("task carries no JOB_ID/JOB_ATTEMPT overrides")
    if detail.started_by is not None and detail.started_by != job_id:
        raise ForeignEvent(f"startedBy {detail.started_by!r} does not match JOB_ID {job_id!r}")
    state = TaskState(
        task_arn=detail.task_arn,
        last_status=detail.last_status,
        version=detail.version,
        desired_status=detail.desired_status,
        stop_code=detail.stop_code,
        stopped_reason=detail.stopped_reason,
        created_at=detail.created_at,
        started_at=detail.started_at,
        stopping_at=detail.stopping_at,
        stopped_at=detail.stopped_at,
        observed_at=detail.updated_at or event.time,
        containers=[
            ContainerState(name=c.name, exit_code=c.exit_code, reason=c.reason)
            for c in detail.containers
        ],
    )
    return Correlated(
        event_id=event.id,
        job_id=job_id,
        attempt=int(attempt_raw),
        cluster_arn=detail.cluster_arn,
        state=state,
        definition=env.get("JOB_DEFINITION"),
    )

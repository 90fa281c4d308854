"""Typed model of the "ECS Task State Change" EventBridge event, and its conversion.

Unknown extra fields are tolerated (ECS adds fields over time); the fields the tracker needs
are typed and checked, so a malformed event fails here, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobtracker.core.checks import Invalid, integer, items, text, within
from jobtracker.core.domain import ContainerState, TaskState

_MISSING: Any = object()


def _get(data: dict[str, Any], alias: str, attr: str | None = None) -> Any:
    # ECS's camelCase name; the field's own name is taken too (as the pydantic model did).
    if alias in data:
        return data[alias]
    return data.get(attr or alias, _MISSING)


def _object(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(name, "must be an object")
    return value


def _required(
    data: dict[str, Any], alias: str, attr: str | None = None, min_length: int = 0
) -> str:
    value = _get(data, alias, attr)
    if value is _MISSING:
        raise Invalid(alias, "field required")
    return text(value, alias, min_length=min_length)


def _optional(data: dict[str, Any], alias: str, attr: str | None = None) -> str | None:
    value = _get(data, alias, attr)
    return None if value is _MISSING or value is None else text(value, alias)


def _list(data: dict[str, Any], alias: str, attr: str | None = None) -> list[Any]:
    value = _get(data, alias, attr)
    return [] if value is _MISSING else items(value, alias)


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str = ""


@dataclass(frozen=True)
class ContainerOverride:
    name: str | None = None
    command: list[str] | None = None
    environment: tuple[EnvVar, ...] = ()


@dataclass(frozen=True)
class EventContainer:
    name: str
    exit_code: int | None = None
    reason: str | None = None
    last_status: str | None = None
    container_arn: str | None = None


# TaskDetail's optional text fields: (attribute, ECS's name).
_DETAIL_TEXTS = (
    ("task_definition_arn", "taskDefinitionArn"),
    ("desired_status", "desiredStatus"),
    ("started_by", "startedBy"),
    ("group", "group"),
    ("stop_code", "stopCode"),
    ("stopped_reason", "stoppedReason"),
    ("launch_type", "launchType"),
    ("capacity_provider_name", "capacityProviderName"),
    ("created_at", "createdAt"),
    ("pull_started_at", "pullStartedAt"),
    ("pull_stopped_at", "pullStoppedAt"),
    ("started_at", "startedAt"),
    ("stopping_at", "stoppingAt"),
    ("execution_stopped_at", "executionStoppedAt"),
    ("stopped_at", "stoppedAt"),
    ("updated_at", "updatedAt"),
    ("availability_zone", "availabilityZone"),
)


@dataclass(frozen=True)
class TaskDetail:
    task_arn: str
    cluster_arn: str
    last_status: str
    version: int
    containers: tuple[EventContainer, ...] = ()
    container_overrides: tuple[ContainerOverride, ...] = ()
    task_definition_arn: str | None = None
    desired_status: str | None = None
    started_by: str | None = None
    group: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    launch_type: str | None = None
    capacity_provider_name: str | None = None
    created_at: str | None = None
    pull_started_at: str | None = None
    pull_stopped_at: str | None = None
    started_at: str | None = None
    stopping_at: str | None = None
    execution_stopped_at: str | None = None
    stopped_at: str | None = None
    updated_at: str | None = None
    availability_zone: str | None = None


@dataclass(frozen=True)
class EcsTaskStateChange:
    id: str
    detail_type: str
    source: str
    detail: TaskDetail
    time: str | None = None
    region: str | None = None
    account: str | None = None


def _env_var(raw: object) -> EnvVar:
    data = _object(raw, "")
    value = _get(data, "value")
    return EnvVar(_required(data, "name"), "" if value is _MISSING else text(value, "value"))


def _container_override(raw: object) -> ContainerOverride:
    data = _object(raw, "")
    command = _get(data, "command")
    environment = []
    for i, var in enumerate(_list(data, "environment")):
        with within(f"environment.{i}"):
            environment.append(_env_var(var))
    return ContainerOverride(
        name=_optional(data, "name"),
        command=None
        if command is _MISSING or command is None
        else [text(c, f"command.{i}") for i, c in enumerate(items(command, "command"))],
        environment=tuple(environment),
    )


def _container(raw: object) -> EventContainer:
    data = _object(raw, "")
    exit_code = _get(data, "exitCode", "exit_code")
    return EventContainer(
        name=_required(data, "name"),
        exit_code=None
        if exit_code is _MISSING or exit_code is None
        else integer(exit_code, "exitCode"),
        reason=_optional(data, "reason"),
        last_status=_optional(data, "lastStatus", "last_status"),
        container_arn=_optional(data, "containerArn", "container_arn"),
    )


def _detail(raw: object) -> TaskDetail:
    data = _object(raw, "")
    version = _get(data, "version")
    if version is _MISSING:
        raise Invalid("version", "field required")
    containers = []
    for i, container in enumerate(_list(data, "containers")):
        with within(f"containers.{i}"):
            containers.append(_container(container))
    overrides_raw = _get(data, "overrides")
    overrides = {} if overrides_raw is _MISSING else _object(overrides_raw, "overrides")
    container_overrides = []
    for i, override in enumerate(_list(overrides, "containerOverrides", "container_overrides")):
        with within(f"overrides.containerOverrides.{i}"):
            container_overrides.append(_container_override(override))
    return TaskDetail(
        task_arn=_required(data, "taskArn", "task_arn", min_length=1),
        cluster_arn=_required(data, "clusterArn", "cluster_arn", min_length=1),
        last_status=_required(data, "lastStatus", "last_status", min_length=1),
        version=integer(version, "version", ge=0),
        containers=tuple(containers),
        container_overrides=tuple(container_overrides),
        **{attr: _optional(data, alias, attr) for attr, alias in _DETAIL_TEXTS},
    )


def parse_event(raw: object) -> EcsTaskStateChange:
    """Raises checks.Invalid (a ValueError) naming the field of a malformed event. Fields ECS
    adds over time are ignored; those the tracker reads are typed and checked."""
    data = _object(raw, "")
    detail = _get(data, "detail")
    if detail is _MISSING:
        raise Invalid("detail", "field required")
    with within("detail"):
        parsed = _detail(detail)
    return EcsTaskStateChange(
        id=_required(data, "id"),
        detail_type=_required(data, "detail-type", "detail_type"),
        source=_required(data, "source"),
        detail=parsed,
        time=_optional(data, "time"),
        region=_optional(data, "region"),
        account=_optional(data, "account"),
    )


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


def _job_env(detail: TaskDetail) -> dict[str, str]:
    env: dict[str, str] = {}
    for override in detail.container_overrides:
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

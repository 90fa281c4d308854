"""Validated settings, read lazily from the environment through a cached getter.

Nothing here runs at import time, so tests (and the local stack) set the environment first and
call `reset_settings()` when they change it. Invalid configuration fails with ConfigError naming
the variable and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from jobtracker.core.checks import (
    Invalid,
    boolean,
    fields,
    integer,
    items,
    mapping,
    number,
    one_of,
    optional,
    store,
    text,
    texts,
    within,
)
from jobtracker.core.cost import fargate_size_error
from jobtracker.core.domain import NAME_PATTERN, TERMINAL_STATUSES, JobStatus
from jobtracker.core.policy import RetryOverrides, RetryPolicy, default_policy

LaunchType = Literal["FARGATE", "EC2", "EXTERNAL"]
LAUNCH_TYPES: tuple[LaunchType, ...] = ("FARGATE", "EC2", "EXTERNAL")
Architecture = Literal["X86_64", "ARM64"]
ARCHITECTURES: tuple[Architecture, ...] = ("X86_64", "ARM64")


@dataclass(frozen=True, kw_only=True)
class CapacityProvider:
    """One entry of a definition's capacity provider strategy."""

    capacity_provider: str
    weight: int = 1
    base: int = 0

    def __post_init__(self) -> None:
        text(self.capacity_provider, "capacity_provider")
        store(self, "weight", integer(self.weight, "weight", ge=0, le=1000))
        store(self, "base", integer(self.base, "base", ge=0, le=100000))


def _names(value: object, name: str) -> list[str]:
    # CloudFormation hands lists over as one comma-joined string.
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return texts(value, name)


def _strategy(value: object) -> list[CapacityProvider]:
    found = []
    for i, item in enumerate(items(value, "capacity_provider_strategy")):
        with within(f"capacity_provider_strategy.{i}"):
            found.append(
                item
                if isinstance(item, CapacityProvider)
                else CapacityProvider(
                    **fields(item, CAPACITY_PROVIDER_FIELDS, ("capacity_provider",))
                )
            )
    return found


@dataclass(frozen=True, kw_only=True)
class JobDefinition:
    """A deployment-configured way to run jobs. Users pick one by name; never a raw ARN."""

    task_definition: str
    container: str
    cluster: str
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    assign_public_ip: bool = False
    launch_type: LaunchType | None = "FARGATE"
    capacity_provider_strategy: list[CapacityProvider] | None = None
    platform_version: str | None = None
    essential_containers: list[str] | None = None
    log_group: str | None = None
    log_stream_prefix: str | None = None
    timeout_seconds: int | None = None
    start_timeout_seconds: int | None = None
    stop_timeout_seconds: int = 30
    retry: RetryOverrides | None = None
    # Whether a submission may replace the container's command: off unless the deployment says
    # so, since a command runs with the definition's task role.
    allow_command_override: bool = False
    # At most this many jobs of the definition have a task launched and not yet stopped; the
    # others wait, PENDING, for a slot (a licence count, a database's connections). None: no limit.
    max_running: int | None = None
    # The task definition's Fargate size (CPU units, memory MiB) and CPU architecture, which the
    # API prices each attempt's estimated cost on (core/cost.py). Optional: no size, no cost.
    cpu: int | None = None
    memory: int | None = None
    architecture: Architecture = "X86_64"

    def __post_init__(self) -> None:
        for name in ("task_definition", "container", "cluster"):
            text(getattr(self, name), name, min_length=1)
        store(self, "subnets", _names(self.subnets, "subnets"))
        store(self, "security_groups", _names(self.security_groups, "security_groups"))
        store(self, "assign_public_ip", boolean(self.assign_public_ip, "assign_public_ip"))
        store(
            self,
            "launch_type",
            optional(one_of, self.launch_type, "launch_type", choices=LAUNCH_TYPES),
        )
        if self.capacity_provider_strategy is not None:
            store(self, "capacity_provider_strategy", _strategy(self.capacity_provider_strategy))
        for name in ("platform_version", "log_group", "log_stream_prefix"):
            optional(text, getattr(self, name), name)
        store(
            self,
            "essential_containers",
            optional(texts, self.essential_containers, "essential_containers"),
        )
        for name in ("timeout_seconds", "start_timeout_seconds"):
            store(self, name, optional(integer, getattr(self, name), name, ge=1))
        store(
            self,
            "stop_timeout_seconds",
            integer(self.stop_timeout_seconds, "stop_timeout_seconds", ge=2, le=120),
        )
        if self.retry is not None and not isinstance(self.retry, RetryOverrides):
            with within("retry"):
                store(self, "retry", checked_overrides(self.retry))
        store(
            self,
            "allow_command_override",
            boolean(self.allow_command_override, "allow_command_override"),
        )
        store(
            self, "max_running", optional(integer, self.max_running, "max_running", ge=1, le=10000)
        )
        store(self, "cpu", optional(integer, self.cpu, "cpu"))
        store(self, "memory", optional(integer, self.memory, "memory"))
        store(self, "architecture", one_of(self.architecture, "architecture", ARCHITECTURES))
        if self.cpu is None and self.memory is None:
            return
        if self.cpu is None or self.memory is None:
            raise Invalid("", "cpu and memory go together: give both or neither")
        error = fargate_size_error(self.cpu, self.memory)
        if error:
            raise Invalid("", error)

    @classmethod
    def from_dict(cls, data: object) -> JobDefinition:
        return cls(**fields(data, DEFINITION_FIELDS, ("task_definition", "container", "cluster")))

    @property
    def deciding_containers(self) -> list[str]:
        return self.essential_containers or [self.container]


CAPACITY_PROVIDER_FIELDS = frozenset(CapacityProvider.__dataclass_fields__)
DEFINITION_FIELDS = frozenset(JobDefinition.__dataclass_fields__)

# The numeric settings: the variable each is read from (if any), its kind and its bounds.
NUMBERS: dict[str, tuple[str | None, Callable[..., Any], dict[str, float]]] = {
    # Multiplies every backoff wait: 1 in production; the local stack and e2e tests use less.
    "backoff_scale": ("BACKOFF_SCALE", number, {"ge": 0, "le": 10}),
    # The account's launch rate (Fargate: 20 task launches a second, bursts of 100), shared by
    # every launcher through the governor.
    "launch_rate": ("LAUNCH_RATE", number, {"gt": 0, "le": 1000}),
    "launch_burst": ("LAUNCH_BURST", integer, {"ge": 1, "le": 10000}),
    # How far ahead a launch that may not go now books its slot (adapters/governor.py), at
    # most one SQS delay: 0 refuses instead (the job writes a wait and asks again).
    "launch_booking_seconds": ("LAUNCH_BOOKING_SECONDS", number, {"ge": 0, "le": 900}),
    "max_launch_failures": ("MAX_LAUNCH_FAILURES", integer, {"ge": 1, "le": 100}),
    "launch_backoff_base_seconds": ("LAUNCH_BACKOFF_BASE_SECONDS", number, {"ge": 0, "le": 900}),
    "launch_backoff_cap_seconds": ("LAUNCH_BACKOFF_CAP_SECONDS", number, {"ge": 0, "le": 3600}),
    "quiet_after_seconds": ("QUIET_AFTER_SECONDS", integer, {"ge": 10}),
    "decision_grace_seconds": ("DECISION_GRACE_SECONDS", integer, {"ge": 1}),
    "default_start_timeout_seconds": ("DEFAULT_START_TIMEOUT_SECONDS", integer, {"ge": 1}),
    "retention_days": ("RETENTION_DAYS", integer, {"ge": 1}),
    "idempotency_ttl_hours": (None, integer, {"ge": 1, "le": 24 * 30}),
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The deployment's settings, read and checked once from the environment."""

    table_name: str
    job_definitions: dict[str, JobDefinition]
    launch_queue_url: str | None = None
    retry_queue_url: str | None = None
    deadline_queue_url: str | None = None  # attempts' timers (usecases/deadlines.py)
    event_dlq_url: str | None = None  # events and ticks a function could not handle
    notify_retry_queue_url: str | None = None  # job changes the bus or SNS refused, for later
    event_bus_name: str = "default"
    schedule_group: str | None = None  # the EventBridge Scheduler group of the job schedules
    # The role the job schedules invoke create_job as: the one role the API may pass back to
    # Scheduler when it pauses or resumes a schedule (UpdateSchedule resends it).
    schedule_role_arn: str | None = None
    region: str = "us-east-1"  # where the stack runs: console links name it
    job_topic_arn: str | None = None
    default_retry: RetryPolicy = field(default_factory=default_policy)
    backoff_scale: float = 1.0
    launch_rate: float = 20.0
    launch_burst: int = 100
    # 300 s: at Fargate's rate, 5,400 launches booked ahead; a booked job cancelled leaves its
    # slot unused, so a cancelled burst costs the others at most this long.
    launch_booking_seconds: float = 300.0
    max_launch_failures: int = 8
    launch_backoff_base_seconds: float = 5.0
    launch_backoff_cap_seconds: float = 300.0
    quiet_after_seconds: int = 300
    decision_grace_seconds: int = 120
    default_start_timeout_seconds: int = 900
    retention_days: int | None = None
    idempotency_ttl_hours: int = 24
    tracing: bool = False
    # Which statuses are published as "Job State Change" (EventBridge bills each custom event:
    # every status change would cost $4 per million successful jobs, the terminal ones $1).
    notify_statuses: frozenset[str] = frozenset(s.value for s in TERMINAL_STATUSES)

    def __post_init__(self) -> None:
        text(self.table_name, "table_name", min_length=1)
        definitions = {}
        for name, definition in mapping(self.job_definitions, "job_definitions").items():
            text(name, f"job_definitions.{name}", pattern=NAME_PATTERN)
            with within(f"job_definitions.{name}"):
                definitions[name] = (
                    definition
                    if isinstance(definition, JobDefinition)
                    else JobDefinition.from_dict(definition)
                )
        store(self, "job_definitions", definitions)
        for name in ("launch_queue_url", "retry_queue_url", "deadline_queue_url", "event_dlq_url"):
            optional(text, getattr(self, name), name)
        for name in ("notify_retry_queue_url", "job_topic_arn"):
            optional(text, getattr(self, name), name)
        text(self.event_bus_name, "event_bus_name")
        text(self.region, "region")
        for name, (_, check, bounds) in NUMBERS.items():
            value = getattr(self, name)
            if value is not None or name != "retention_days":  # unset: jobs are kept forever
                store(self, name, check(value, name, **bounds))
        store(self, "tracing", boolean(self.tracing, "tracing"))


def checked_overrides(data: object) -> RetryOverrides:
    """Retry settings checked by the API's own retry model, the one owner of a policy's rules;
    pydantic is loaded only where a deployment sets them (the defaults are trusted data)."""
    from jobtracker.edge.api_models import RetryOverrides as Model
    from jobtracker.edge.api_models import parse

    model: Model = parse(Model, data)
    return model.to_core()


class ConfigError(RuntimeError):
    pass


# The variable each setting is read from, to name it in errors.
VARIABLES = {
    "table_name": "TABLE_NAME",
    "job_definitions": "JOB_DEFINITIONS",
    "job_defaults": "JOB_DEFAULTS",
    "default_retry": "DEFAULT_RETRY_POLICY",
    **{name: variable for name, (variable, _, _) in NUMBERS.items() if variable},
}


def _statuses(value: str) -> frozenset[str]:
    """NOTIFY_STATUSES: "ALL", "TERMINAL" (the statuses a job ends in) or a comma-separated
    list of job statuses."""
    every = {s.value for s in JobStatus}
    if value.strip().upper() == "ALL":
        return frozenset(every)
    if value.strip().upper() == "TERMINAL":
        return frozenset(s.value for s in TERMINAL_STATUSES)
    names = {v.strip().upper() for v in value.split(",") if v.strip()}
    unknown = names - every
    if unknown:
        raise ConfigError(f"NOTIFY_STATUSES: unknown status {sorted(unknown)}")
    return frozenset(names)


def _json(env: Mapping[str, str], variable: str, name: str, default: str) -> Any:
    try:
        return json.loads(env.get(variable, default) or default)
    except ValueError as exc:
        raise Invalid(name, f"not valid JSON: {exc}") from None


def _definitions(env: Mapping[str, str]) -> Any:
    """JOB_DEFINITIONS, each entry over JOB_DEFAULTS (what every definition shares: cluster,
    network, logs), so an entry says only what is its own. Lambda's environment holds 4 KB in
    all, about 1 KB of it the stack's other variables: with the shared fields repeated (about
    490 bytes a definition once the ARNs are filled in) there was room for about 6 definitions;
    with them shared (about 390 bytes once) and one line each (about 130 bytes), for about 20."""
    definitions = _json(env, "JOB_DEFINITIONS", "job_definitions", "{}")
    defaults = _json(env, "JOB_DEFAULTS", "job_defaults", "{}")
    if not isinstance(defaults, dict):
        raise Invalid("job_defaults", "must be an object")
    if not defaults or not isinstance(definitions, dict):
        return definitions
    return {
        name: {**defaults, **entry} if isinstance(entry, dict) else entry
        for name, entry in definitions.items()
    }


def _read(env: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "table_name": env.get("TABLE_NAME", ""),
        "job_definitions": _definitions(env),
        "launch_queue_url": env.get("LAUNCH_QUEUE_URL") or None,
        "retry_queue_url": env.get("RETRY_QUEUE_URL") or None,
        "deadline_queue_url": env.get("DEADLINE_QUEUE_URL") or None,
        "event_dlq_url": env.get("EVENT_DLQ_URL") or None,
        "notify_retry_queue_url": env.get("NOTIFY_RETRY_QUEUE_URL") or None,
        "event_bus_name": env.get("EVENT_BUS_NAME") or "default",
        "schedule_group": env.get("SCHEDULE_GROUP") or None,
        "schedule_role_arn": env.get("SCHEDULE_ROLE_ARN") or None,
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "job_topic_arn": env.get("JOB_TOPIC_ARN") or None,
        "tracing": env.get("JOBTRACKER_TRACING", "false").lower() == "true",
    }
    if env.get("NOTIFY_STATUSES"):
        data["notify_statuses"] = _statuses(env["NOTIFY_STATUSES"])
    for name, (variable, _, _) in NUMBERS.items():
        if variable and env.get(variable):
            data[name] = env[variable]
    if env.get("DEFAULT_RETRY_POLICY"):
        overrides = _json(env, "DEFAULT_RETRY_POLICY", "default_retry", "{}")
        with within("default_retry"):
            data["default_retry"] = default_policy().with_overrides(checked_overrides(overrides))
    return data


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    try:
        return Settings(**_read(env))
    except Invalid as exc:
        head, _, rest = exc.field.partition(".")
        where = VARIABLES.get(head, head) + (f": {rest}" if rest else "")
        raise ConfigError(f"invalid jobtracker configuration: {where}: {exc.message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    get_settings.cache_clear()

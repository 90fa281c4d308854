"""The job and its attempts as the logic sees them: plain dataclasses, no AWS types.

The data-access module (store) converts these to and from DynamoDB items; the API converts them to
its response models (edge/api_models.py). Everything that decides a transition works on these
objects only.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# The names users pick and see: job definitions and schedules.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class JobStatus(StrEnum):
    WAITING = "WAITING"  # its dependencies are not met yet (core/dependencies.py)
    PENDING = "PENDING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    CANCELLING = "CANCELLING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED}
)


class Outcome(StrEnum):
    """What became of one attempt."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAIL = "fail"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    LOST = "lost"  # ECS no longer knows the task; the retry policy decides what follows


class LaunchFailure(StrEnum):
    """What a failed RunTask means for the job."""

    WAIT = (
        "wait"  # throttling, capacity, RESOURCE:*: the job waits (only its queue timeout ends it)
    )
    RETRY = "retry"  # a transient service error: tried again, a bounded number of times
    FATAL = "fatal"  # the request itself is wrong: the job fails


# ECS's stopCode for a task that StopTask stopped (ours, or anyone's with the permission).
STOP_TASK_CODE = "UserInitiated"


class StopRequest(StrEnum):
    """Why we asked ECS to stop a task, so its STOPPED event ends the job the right way."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"
    START_TIMEOUT = "start_timeout"
    REPLACED = "replaced"


# Order of ECS lastStatus values; used only to pick a job status, never to order events
# (detail.version does that).
ECS_STATUS_ORDER = (
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
)
# The stop codes of a Fargate Spot interruption (the notice, then the stop).
SPOT_STOP_CODES = ("SpotInterruption", "TerminationNotice")
# What RunTask says when there is no capacity now (a failure's reason, an error's message).
CAPACITY_UNAVAILABLE = "Capacity is unavailable"
CAPACITY_MARKERS = ("RESOURCE:", "AGENT", CAPACITY_UNAVAILABLE, "capacity", "LOCATION")
# What a task reports before it runs: its job is STARTING (and a cluster counts it as pending).
ECS_PRE_RUNNING = frozenset(ECS_STATUS_ORDER[: ECS_STATUS_ORDER.index("RUNNING")])


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_job_id(now: datetime | None = None) -> str:
    """A ULID-style id: sortable by creation time, valid as ECS startedBy (≤128, [A-Za-z0-9-_/])."""
    ms = int((now or utcnow()).timestamp() * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "job-" + "".join(reversed(chars)).lower()


def minted_at(job_id: str) -> datetime | None:
    """When a job id new_job_id made was made (its first 10 characters are its millisecond
    clock); None for an id it did not make. A child's id is its parent's."""
    match = CHILD_ID.match(job_id)
    base = match.group("parent") if match else job_id
    digits = base.removeprefix("job-")[:10].upper()
    if not base.startswith("job-") or len(digits) != 10 or any(c not in _CROCKFORD for c in digits):
        return None
    ms = 0
    for c in digits:
        ms = ms * 32 + _CROCKFORD.index(c)
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# A child's id is its parent's and its index: child i of an array is found (and made twice by
# two fan-outs) as one item, and a child's id alone says it is one (the store keeps children
# out of the top-level lists by it).
CHILD_ID = re.compile(r"^(?P<parent>.+)-(?P<index>0|[1-9][0-9]{0,4})$")


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}-{index}"


def is_child_id(job_id: str) -> bool:
    """Job ids we mint end in 26 letters and digits (never a bare number), so only a child's
    id ends in -<index>."""
    return CHILD_ID.match(job_id) is not None


def client_token(job_id: str, attempt: int) -> str:
    """RunTask clientToken for one (job, attempt): ≤ 64 printable ASCII characters."""
    token = f"{job_id}-a{attempt}"
    if len(token) > 64:
        # Job ids we mint are 30 characters; an id from elsewhere is hashed to fit.
        token = hashlib.sha256(job_id.encode()).hexdigest()[:56] + f"-a{attempt}"
    return token


@dataclass
class ContainerState:
    """A container of a task, as ECS last reported it."""

    name: str
    exit_code: int | None = None
    reason: str | None = None
    essential: bool = True


@dataclass
class TaskState:
    """One observation of an ECS task: from an event, or from DescribeTasks."""

    task_arn: str
    last_status: str
    version: int
    desired_status: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    stopping_at: str | None = None
    stopped_at: str | None = None
    observed_at: str | None = None
    containers: list[ContainerState] = field(default_factory=list)
    source: str = "event"

    @property
    def stopped(self) -> bool:
        return self.last_status == "STOPPED"

    def history_entry(self) -> dict[str, Any]:
        """What an attempt's history keeps of this state (keyed by history_key(version))."""
        return {
            "status": self.last_status,
            "version": self.version,
            "at": self.observed_at,
            "desired_status": self.desired_status,
            "stop_code": self.stop_code,
            "source": self.source,
        }

    @property
    def spot_interruption(self) -> bool:
        return self.stop_code in SPOT_STOP_CODES or (
            self.stopped_reason is not None and "Spot Task was interrupted" in self.stopped_reason
        )


@dataclass
class Attempt:
    """One launch of a job: its task, its states and how it ended."""

    number: int
    client_token: str
    task_arn: str | None = None
    last_status: str | None = None  # ECS lastStatus of the newest applied state
    version: int = 0  # last applied detail.version (0 = none yet)
    created_at: str | None = None
    launched_at: str | None = None
    started_at: str | None = None
    stopped_at: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    containers: list[ContainerState] = field(default_factory=list)
    outcome: str | None = None
    rule: str | None = None
    uncounted: bool = False  # RETRY_UNCOUNTED chose this attempt: not charged to max_attempts
    spot_interruption_at: str | None = None
    awaiting_decision: bool = False
    log_stream: str | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)  # "v%08d" -> state

    def history_entries(self) -> list[dict[str, Any]]:
        return [self.history[k] for k in sorted(self.history)]

    @property
    def log_location(self) -> tuple[str, str] | None:
        """(log group, log stream) of the attempt's task; stored as "group:stream" (neither
        CloudWatch name may contain a colon)."""
        if not self.log_stream or ":" not in self.log_stream:
            return None
        group, stream = self.log_stream.split(":", 1)
        return group, stream


def history_key(version: int) -> str:
    return f"v{version:08d}"


@dataclass
class JobSpec:
    """What the user asked for: immutable after acceptance."""

    definition: str
    command: list[str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int | None = None
    start_timeout_seconds: int | None = None
    queue_timeout_seconds: int | None = None  # how long an attempt may wait for launch capacity
    # The job's own RetryOverrides only: the defaults are referenced (lifecycle.policy_of).
    retry: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # An array's spec (core.arrays.ArraySpec's fields, those set): the job is the parent of
    # that many children and runs no task of its own (core/arrays.py).
    array: dict[str, Any] | None = None
    # The jobs it waits on (core.dependencies.Dependency's fields, defaults left out): it is
    # WAITING until they end as their conditions ask.
    depends_on: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SPEC_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        """From stored data: a field absent or null takes its default."""
        return cls(**{k: v for k, v in data.items() if k in SPEC_FIELDS and v is not None})


# The fields a job is submitted with, in order: what a submission carries into its spec.
SPEC_FIELDS = tuple(JobSpec.__dataclass_fields__)


@dataclass
class Job:
    """A submitted job: what it runs, where it stands, and its attempts."""

    job_id: str
    spec: JobSpec
    status: JobStatus
    created_at: str
    updated_at: str
    attempt: int = 1  # current attempt number
    attempts: dict[int, Attempt] = field(default_factory=dict)
    not_before: str | None = None  # earliest launch time of a PENDING attempt
    launch_error: str | None = None
    launch_failures: int = 0  # transient RunTask errors of this attempt (bounded)
    launch_waits: int = 0  # times this attempt waited for launch capacity (never fails it)
    stop_request: str | None = None
    stop_requested_at: str | None = None
    status_reason: str | None = None
    finished_at: str | None = None
    caller: str | None = None
    schedule_name: str | None = None
    scheduled_time: str | None = None
    uncounted: int = 0  # earlier attempts RETRY_UNCOUNTED chose: not charged to max_attempts
    # The reconciler's consecutive failures on this job and when the last one was: the facts its
    # backoff is derived from (lifecycle.reconcile_backoff_until). Written only on a failure.
    reconcile_failures: int = 0
    reconcile_failed_at: str | None = None
    # A child of an array: its parent's id, its index (0-based) and the array's size. A child
    # runs its parent's spec (without `array`) as a job of its own.
    parent_id: str | None = None
    array_index: int = 0
    array_size: int = 0
    # Its dependencies not met yet (ids): WAITING while this is not empty (core/dependencies.py).
    waiting_on: frozenset[str] = frozenset()
    # Some job waits on this one: its end is looked up in the dependency index (set once, by
    # the first dependent's submission).
    has_dependents: bool = False
    released_at: str | None = None  # when its last dependency was met (it went PENDING)

    @property
    def definition(self) -> str:
        return self.spec.definition

    @property
    def is_array(self) -> bool:
        """An array's parent: it runs no task, its children do."""
        return self.spec.array is not None

    @property
    def current(self) -> Attempt:
        return self.attempts[self.attempt]

    def clone(self) -> Job:
        return copy.deepcopy(self)

"""Between the domain and the table's models: a Job and its attempts as pynamodb records (and
as queue messages and stream images, which carry the same item). Pure functions.

Defaults are not stored (False, 0, "", empty lists and maps read back as the domain's default):
what is left out of every write keeps a default job's item under 1 KB, 1 WRU a write.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from enum import StrEnum
from typing import Any

from jobtracker.adapters.models import (
    ACTIVE,
    CHILD,
    SHARDS,
    WAITING,
    AttemptMap,
    ContainerMap,
    JobRecord,
)
from jobtracker.core.domain import (
    Attempt,
    ContainerState,
    Job,
    JobSpec,
    JobStatus,
    client_token,
    history_key,
    is_child_id,
)

# The Job and Attempt fields the records hold, by the models' Python names (the models own the
# stored names).
_JOB_FIELDS = {f.name for f in fields(Job)}
JOB_FIELDS = tuple(name for name in JobRecord.get_attributes() if name in _JOB_FIELDS)
ATTEMPT_FIELDS = tuple(AttemptMap.get_attributes())
# A history entry's stored names: entries are values of a map keyed by version, which pynamodb
# keeps untyped (it has no map-of-a-model attribute).
HISTORY_ATTRS = {"status": "s", "at": "t", "desired_status": "d", "stop_code": "c", "source": "o"}


def shard_of(job_id: str) -> int:
    return int(hashlib.blake2b(job_id.encode(), digest_size=4).hexdigest(), 16) % SHARDS


def status_group(status: JobStatus) -> str:
    """by_status's group of a status: its own for a final one and for WAITING, ACTIVE for the
    others (what the reconciler reads every minute)."""
    if status.terminal:
        return status.value
    return WAITING if status == JobStatus.WAITING else ACTIVE


def status_key(status: JobStatus, job_id: str) -> str:
    """by_status's key of a job in `status` (an array's children under keys of their own)."""
    group = status_group(status)
    return (
        f"{group}#{CHILD}#{shard_of(job_id)}"
        if is_child_id(job_id)
        else f"{group}#{shard_of(job_id)}"
    )


def list_keys(prefix: str, children: bool) -> list[str]:
    """An index's hash keys under `prefix` ("" for by_created): the top-level jobs' shards, and
    with `children` their children's too."""
    lead = f"{prefix}#" if prefix else ""
    keys = [f"{lead}{s}" for s in range(SHARDS)]
    if children:
        keys += [f"{lead}{CHILD}#{s}" for s in range(SHARDS)]
    return keys


# ---- values ---------------------------------------------------------------------------------


def absent(value: Any) -> bool:
    """Defaults are not stored: an absent attribute reads back as the domain's default."""
    return (
        value is None
        or value is False
        or value == 0
        or value == ""
        or value in ([], {})
        or value == frozenset()
    )


def stored(value: Any) -> Any:
    """A domain value as its attribute takes it; None (not stored) for a default."""
    if absent(value):
        return None
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, frozenset):
        return set(value)
    if isinstance(value, list) and value and isinstance(value[0], ContainerState):
        return [_container(c) for c in value]
    return value


def _container(c: ContainerState) -> ContainerMap:
    return ContainerMap(
        name=c.name,
        exit_code=c.exit_code,
        reason=c.reason or None,
        essential=None if c.essential else False,
    )


def history_attr(key: str) -> str:
    """A history entry's attribute name: its version, without the domain key's padding."""
    return key[1:].lstrip("0") or "0"


def history_value(entry: dict[str, Any]) -> dict[str, Any]:
    out = {HISTORY_ATTRS[k]: v for k, v in entry.items() if k in HISTORY_ATTRS and v is not None}
    if out.get("d") == out.get("s"):
        out.pop("d", None)  # desired == last status: the common case, not stored
    if out.get("o") == "event":
        out.pop("o")
    return out


def _history_entry(version: int, value: dict[str, Any]) -> dict[str, Any]:
    status = value.get("s")
    return {
        "status": status,
        "version": version,
        "at": value.get("t"),
        "desired_status": value.get("d", status),
        "stop_code": value.get("c"),
        "source": value.get("o", "event"),
    }


# ---- attempts ---------------------------------------------------------------------------------


def attempt_map(attempt: Attempt) -> AttemptMap:
    record = AttemptMap(
        history={history_attr(k): history_value(v) for k, v in attempt.history.items()}
    )
    for name in ATTEMPT_FIELDS:
        if name != "history":
            setattr(record, name, stored(getattr(attempt, name)))
    return record


def attempt_from(job_id: str, number: int, record: AttemptMap | None) -> Attempt:
    attempt = Attempt(number=number, client_token=client_token(job_id, number))
    if record is None:
        return attempt
    for name in ATTEMPT_FIELDS:
        value = getattr(record, name)
        if value is None:
            continue
        if name == "history":
            entries = value.as_dict()
            value = {history_key(int(k)): _history_entry(int(k), v) for k, v in entries.items()}
        elif name == "containers":
            value = [
                ContainerState(
                    name=c.name,
                    exit_code=c.exit_code,
                    reason=c.reason,
                    essential=c.essential is not False,
                )
                for c in value
            ]
        setattr(attempt, name, value)
    return attempt


# ---- jobs -------------------------------------------------------------------------------------


def _spec_json(spec: JobSpec) -> str | None:
    parts = {k: v for k, v in spec.to_dict().items() if k != "definition" and not absent(v)}
    return json.dumps(parts, separators=(",", ":"), sort_keys=True) if parts else None


def job_record(job: Job) -> JobRecord:
    """A job's hot item: its fields and its current attempt (earlier ones are archived)."""
    shard = shard_of(job.job_id)
    child = is_child_id(job.job_id)
    record = JobRecord(
        job.job_id,
        kind=JobRecord.KIND,
        definition=job.definition,
        spec_json=_spec_json(job.spec),
        current=attempt_map(job.current),
        created_shard=f"{CHILD}#{shard}" if child else str(shard),
        definition_shard=None if child else f"{job.definition}#{shard}",
        status_shard=status_key(job.status, job.job_id),
        schedule_key=job.schedule_name or None,
    )
    for name in JOB_FIELDS:
        setattr(record, name, stored(getattr(job, name)))
    return record


def job_from_record(record: JobRecord, archived: dict[int, Attempt] | None = None) -> Job:
    spec = JobSpec.from_dict(
        {"definition": record.definition, **json.loads(record.spec_json or "{}")}
    )
    job = Job(
        job_id=record.pk,
        spec=spec,
        status=JobStatus(record.status),
        created_at=record.created_at or "",
        updated_at=record.updated_at or "",
    )
    for name in JOB_FIELDS:
        value = getattr(record, name)
        if value is not None and name not in ("status", "created_at", "updated_at"):
            setattr(job, name, frozenset(value) if isinstance(value, set) else value)
    job.attempts = dict(archived or {})
    job.attempts[job.attempt] = attempt_from(job.job_id, job.attempt, record.current)
    return job


def job_item(job: Job) -> dict[str, Any]:
    """A job's item in plain values, by stored name: what a queue message carries."""
    return job_record(job).to_simple_dict()


def job_from_message(data: dict[str, Any]) -> Job | None:
    """The job a message carried; None when it is not a job record we wrote."""
    if not isinstance(data, dict) or data.get(JobRecord.kind.attr_name) != JobRecord.KIND:
        return None
    try:
        record = JobRecord()
        record.from_simple_dict(data)
        return job_from_record(record)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def job_from_image(image: dict[str, Any] | None) -> Job | None:
    """A job from a stream image (DynamoDB JSON); None for other item kinds."""
    if not image or image.get(JobRecord.kind.attr_name, {}).get("S") != JobRecord.KIND:
        return None
    return job_from_record(JobRecord.from_raw_data(image))


def job_size(job: Job) -> int:
    return item_size(job_record(job).serialize())


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item in DynamoDB JSON (names + values, numbers as their digits)."""
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "N":
        return len(data.lstrip("-").replace(".", "")) // 2 + 2
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in data)
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    return len(str(data))

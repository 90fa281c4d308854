"""The job's record: how a Job and its attempts are written as items (and queue messages).

Short attribute names and no stored defaults keep the hot item small: names count towards the
size of every write. Pure functions.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from jobtracker.core.domain import (
    Attempt,
    ContainerState,
    Job,
    JobSpec,
    JobStatus,
    client_token,
    history_key,
)

SHARDS = 16
ACTIVE = "ACTIVE"

# domain field -> attribute name (short: names count towards every write's size)
JOB_ATTRS = {
    "status": "s",
    "created_at": "c",
    "updated_at": "u",
    "attempt": "n",
    "not_before": "nb",
    "launch_error": "le",
    "launch_failures": "lf",
    "launch_waits": "lw",
    "stop_request": "sr",
    "stop_requested_at": "sa",
    "status_reason": "rs",
    "finished_at": "f",
    "caller": "cl",
    "schedule_name": "sc",
    "scheduled_time": "st",
    "uncounted": "un",
    "reconcile_failures": "rf",
    "reconcile_failed_at": "ra",
}
ATTEMPT_ATTRS = {
    "task_arn": "t",
    "last_status": "l",
    "version": "v",
    "created_at": "c",
    "launched_at": "la",
    "started_at": "sa",
    "stopped_at": "so",
    "stop_code": "sc",
    "stopped_reason": "sr",
    "containers": "k",
    "outcome": "o",
    "rule": "r",
    "uncounted": "uc",
    "spot_interruption_at": "si",
    "awaiting_decision": "ad",
    "log_stream": "lg",
    "history": "h",
}
HISTORY_ATTRS = {"status": "s", "at": "t", "desired_status": "d", "stop_code": "c", "source": "o"}
INDEXES = {  # index name -> hash key attribute
    "by_created": "gc",
    "by_definition": "gd",
    "by_status": "gx",
    "by_schedule": "gs",
}


def shard_of(job_id: str) -> int:
    return int(hashlib.blake2b(job_id.encode(), digest_size=4).hexdigest(), 16) % SHARDS


def status_key(status: JobStatus, shard: int) -> str:
    return f"{status.value if status.terminal else ACTIVE}#{shard}"


# ---- values ---------------------------------------------------------------------------------


def absent(value: Any) -> bool:
    """Defaults are not stored: an absent attribute reads back as the domain's default."""
    return value is None or value is False or value == 0 or value == "" or value in ([], {})


def plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, ContainerState):
        return _container(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _container(c: ContainerState) -> dict[str, Any]:
    out: dict[str, Any] = {"n": c.name}
    if c.exit_code is not None:
        out["x"] = c.exit_code
    if c.reason:
        out["r"] = c.reason
    if not c.essential:
        out["e"] = False
    return out


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


def attempt_map(attempt: Attempt) -> dict[str, Any]:
    out: dict[str, Any] = {"h": {}}
    for name, attr in ATTEMPT_ATTRS.items():
        value = getattr(attempt, name)
        if name == "history":
            out["h"] = {history_attr(k): history_value(v) for k, v in value.items()}
        elif not absent(value):
            out[attr] = plain(value)
    return out


def attempt_from(job_id: str, number: int, data: dict[str, Any]) -> Attempt:
    attempt = Attempt(number=number, client_token=client_token(job_id, number))
    for name, attr in ATTEMPT_ATTRS.items():
        if attr not in data:
            continue
        value = data[attr]
        if name == "history":
            value = {history_key(int(k)): _history_entry(int(k), v) for k, v in value.items()}
        elif name == "containers":
            value = [
                ContainerState(
                    name=c["n"], exit_code=c.get("x"), reason=c.get("r"), essential=c.get("e", True)
                )
                for c in value
            ]
        setattr(attempt, name, value)
    return attempt


def _spec_json(spec: JobSpec) -> str | None:
    parts = {k: v for k, v in spec.to_dict().items() if k != "definition" and not absent(v)}
    return json.dumps(parts, separators=(",", ":"), sort_keys=True) if parts else None


def job_item(job: Job) -> dict[str, Any]:
    """A new job's item, in plain Python values."""
    shard = shard_of(job.job_id)
    item: dict[str, Any] = {
        "pk": job.job_id,
        "k": "J",
        "d": job.definition,
        "a": attempt_map(job.current),
        "gc": str(shard),
        "gd": f"{job.definition}#{shard}",
        "gx": status_key(job.status, shard),
    }
    for name, attr in JOB_ATTRS.items():
        value = getattr(job, name)
        if not absent(value):
            item[attr] = plain(value)
    if job.schedule_name:
        item["gs"] = job.schedule_name
    spec = _spec_json(job.spec)
    if spec:
        item["p"] = spec
    return item


def job_from_item(item: dict[str, Any], archived: dict[int, Attempt] | None = None) -> Job:
    spec = JobSpec.from_dict({"definition": item["d"], **json.loads(item.get("p") or "{}")})
    job = Job(
        job_id=item["pk"],
        spec=spec,
        status=JobStatus(item["s"]),
        created_at=item.get("c", ""),
        updated_at=item.get("u", ""),
    )
    for name, attr in JOB_ATTRS.items():
        if attr in item and name not in ("status", "created_at", "updated_at"):
            setattr(job, name, item[attr])
    job.attempts = dict(archived or {})
    job.attempts[job.attempt] = attempt_from(job.job_id, job.attempt, item.get("a") or {})
    return job


def to_wire(value: Any) -> dict[str, Any]:
    """A plain value as a DynamoDB attribute value (strings, numbers, booleans, null, lists and
    maps: all a record holds). Written here rather than taken from boto3, whose import would
    double the cold start of every handler that talks to DynamoDB."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, int | float):
        return {"N": repr(value)}
    if isinstance(value, dict):
        return {"M": {str(k): to_wire(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_wire(v) for v in value]}
    raise TypeError(f"cannot store a {type(value).__name__} in a job record")


def _from_value(value: dict[str, Any]) -> Any:
    ((kind, data),) = value.items()
    if kind == "S":
        return data
    if kind == "N":
        try:
            return int(data)
        except ValueError:
            number = float(data)
            return int(number) if number.is_integer() else number
    if kind == "BOOL":
        return bool(data)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _from_value(v) for k, v in data.items()}
    if kind == "L":
        return [_from_value(v) for v in data]
    raise ValueError(f"unexpected DynamoDB type {kind!r} in a job record")


def from_wire(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (attribute name -> attribute value) as plain values."""
    return {k: _from_value(v) for k, v in item.items()}


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size, approximately (names + values, numbers as their digits)."""
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float):
        return len(str(value).replace("-", "").replace(".", "")) // 2 + 2
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in value.items())
    if isinstance(value, list):
        return 3 + sum(_value_size(v) + 1 for v in value)
    return len(str(value))


def job_from_message(data: dict[str, Any]) -> Job | None:
    """The job a message carried; None when it is not a job record we wrote."""
    try:
        return job_from_item(data) if data.get("k") == "J" else None
    except (KeyError, TypeError, ValueError):
        return None


def job_from_image(image: dict[str, Any] | None) -> Job | None:
    """A job from a stream image (DynamoDB JSON); None for other item kinds."""
    if not image or image.get("k", {}).get("S") != "J":
        return None
    return job_from_item(from_wire(image))

"""Messages on the retry, launch and deadline queues, parsed into a model and dispatched."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jobtracker.adapters.records import job_from_message
from jobtracker.core.arrays import MAX_ARRAY_SIZE
from jobtracker.core.checks import (
    Invalid,
    boolean,
    fields,
    integer,
    mapping,
    one_of,
    optional,
    text,
    texts,
)
from jobtracker.observability import count, logger
from jobtracker.usecases.arrays import handle_fanout
from jobtracker.usecases.deadlines import on_timer
from jobtracker.usecases.decide import decide_attempt
from jobtracker.usecases.dependencies import PAGE, handle_release
from jobtracker.usecases.launch import handle_launch_message
from jobtracker.usecases.ports import Work
from jobtracker.wiring import Deps

KINDS = tuple(Work)


@dataclass(frozen=True)
class WorkMessage:
    kind: Work
    job_id: str
    attempt: int
    # A decide hand-off carries the job's record as the handing write left it: the decider
    # plans from it without a read (its guard catches anything that changed since).
    job: dict[str, Any] | None = None
    # A closing array's cursor: the first child index its FANOUT cancels from.
    start: int | None = None
    # A RELEASE's page: the dependents it resolves (none: find them all and send the pages);
    # or the per-index dependent array whose waiting children it sweeps, from `start`.
    dependents: list[str] | None = None
    sweep: str | None = None
    # A LAUNCH whose governor slot is booked for the time it arrives: it launches unasked.
    booked: bool = False

    @classmethod
    def from_json(cls, body: str) -> WorkMessage:
        """Raises checks.Invalid naming the field at fault. Unknown fields are ignored."""
        try:
            raw = json.loads(body)
        except ValueError as exc:
            raise Invalid("", f"not JSON: {exc}") from None
        data = fields(raw, MESSAGE_FIELDS, ("kind", "job_id", "attempt"), extra=True)
        job = data.get("job")
        start = data.get("start")
        dependents = data.get("dependents")
        sweep = data.get("sweep")
        booked = data.get("booked", False)
        return cls(
            kind=Work(one_of(data["kind"], "kind", tuple(k.value for k in KINDS))),
            job_id=text(data["job_id"], "job_id", min_length=1, max_length=128),
            attempt=integer(data["attempt"], "attempt", ge=1, le=1000),
            job=None if job is None else mapping(job, "job"),
            start=None if start is None else integer(start, "start", ge=0, le=MAX_ARRAY_SIZE),
            dependents=optional(texts, dependents, "dependents", max_items=PAGE, max_length=128),
            sweep=optional(text, sweep, "sweep", max_length=128),
            booked=boolean(booked, "booked"),
        )


MESSAGE_FIELDS = frozenset(WorkMessage.__dataclass_fields__)


def handle_work_message(body: str, deps: Deps | None = None) -> str:
    """Returns what was done. Raises only for failures worth a redelivery."""
    try:
        message = WorkMessage.from_json(body)
    except Invalid as exc:
        logger.warning("malformed work message dropped", extra={"errors": str(exc)[:500]})
        count("WorkMessagesMalformed")
        return "malformed"
    if message.kind is Work.DECIDE:
        snapshot = job_from_message(message.job) if message.job else None
        if snapshot is not None and snapshot.job_id != message.job_id:
            snapshot = None
        return decide_attempt(message.job_id, message.attempt, deps, snapshot).action
    if message.kind is Work.DEADLINE:
        return on_timer(message.job_id, message.attempt, deps)
    if message.kind is Work.FANOUT:
        return handle_fanout(message.job_id, message.start, deps)
    if message.kind is Work.RELEASE:
        return handle_release(
            message.job_id, message.dependents, message.sweep, message.start, deps
        )
    return handle_launch_message(message.job_id, message.attempt, deps, booked=message.booked)

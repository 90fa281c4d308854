"""The stack's job schedules from EventBridge Scheduler: ListSchedules in the stack's schedule
group (a group of their own: the reconciler's schedule is not a job schedule), then
GetSchedule for each one's expression and input (ListSchedules carries neither).

Pausing and resuming is UpdateSchedule, which replaces the whole schedule (a field left out is
reset, not kept): the schedule is read again and sent back whole with its new state. Scheduler
has no conditional update; a change someone makes between the two calls is overwritten."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jobtracker.adapters.aws import client
from jobtracker.config import get_settings
from jobtracker.core.errors import Conflict, NotFound
from jobtracker.usecases.ports import ScheduleRecord


class SchedulerSchedules:
    def __init__(self, group: str | None = None) -> None:
        self.group = group  # None: the configured SCHEDULE_GROUP, read at the first call

    def schedules(self) -> list[ScheduleRecord]:
        group = self.group or get_settings().schedule_group
        if not group:
            return []  # a deployment without job schedules
        scheduler = client("scheduler")
        names = [
            s["Name"]
            for page in scheduler.get_paginator("list_schedules").paginate(GroupName=group)
            for s in page.get("Schedules", [])
        ]
        found = []
        for name in names:
            try:
                found.append(_record(scheduler.get_schedule(Name=name, GroupName=group)))
            except scheduler.exceptions.ResourceNotFoundException:
                continue  # deleted between the list and the read
        return found

    def set_state(self, record: ScheduleRecord, state: str) -> ScheduleRecord:
        """Raises NotFound when the schedule is gone, Conflict when it changed under us (its
        role, or another update at the same moment)."""
        scheduler = client("scheduler")
        errors = scheduler.exceptions
        try:
            got = scheduler.get_schedule(Name=record.name, GroupName=record.group)
            if got.get("State") == state:
                return _record(got)
            if (got.get("Target") or {}).get("RoleArn") != record.role_arn:
                raise Conflict(f"schedule {record.name} changed meanwhile (its role): try again")
            whole = {k: got[k] for k in UPDATE_FIELDS if got.get(k) is not None}
            start = whole.get("StartDate")
            if start is not None and start < datetime.now(UTC):
                # a recurring schedule's past start changes nothing, and Scheduler refuses one
                # more than 5 minutes past
                del whole["StartDate"]
            scheduler.update_schedule(**whole, State=state)
        except errors.ResourceNotFoundException:
            raise NotFound(f"schedule {record.name} not found") from None
        except errors.ConflictException:
            raise Conflict(f"schedule {record.name} is being changed: try again") from None
        return _record({**got, "State": state})


# What UpdateSchedule takes of what GetSchedule answers (the rest: Arn, dates of change).
UPDATE_FIELDS = (
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "EndDate",
    "Description",
    "KmsKeyArn",
    "Target",
    "FlexibleTimeWindow",
    "ActionAfterCompletion",
)


def _record(got: dict[str, Any]) -> ScheduleRecord:
    return ScheduleRecord(
        name=got["Name"],
        group=got.get("GroupName") or "default",
        expression=got["ScheduleExpression"],
        timezone=got.get("ScheduleExpressionTimezone"),
        state=got.get("State", "ENABLED"),
        created_at=got.get("CreationDate"),
        description=got.get("Description") or None,
        input=(got.get("Target") or {}).get("Input"),
        arn=got.get("Arn") or "",
        role_arn=(got.get("Target") or {}).get("RoleArn"),
    )


@lru_cache(maxsize=1)
def default_schedules() -> SchedulerSchedules:
    return SchedulerSchedules()

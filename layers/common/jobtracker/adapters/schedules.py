"""The stack's job schedules from EventBridge Scheduler: ListSchedules in the stack's schedule
group (a group of their own: the reconciler's schedule is not a job schedule), then
GetSchedule for each one's expression and input (ListSchedules carries neither)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jobtracker.adapters.aws import client
from jobtracker.config import get_settings
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
    )


@lru_cache(maxsize=1)
def default_schedules() -> SchedulerSchedules:
    return SchedulerSchedules()

"""Fires the template's schedules (ScheduleV2 / Schedule events) on time, AWS semantics (the
expressions are jobtracker.core.cron's: six-field cron with ? L W # in the schedule's time zone,
rate() counted from when the schedule was created, at()), and
EventBridge Scheduler's <aws.scheduler.scheduled-time> / <aws.scheduler.execution-id>
placeholders filled in the input."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobtracker.core.cron import Schedule, parse
from jobtracker.core.submission import fill_scheduler_placeholders


@dataclass
class ScheduleRunner:
    name: str
    function: str
    schedule: Schedule
    input_template: str | None
    origin: datetime
    group: str | None = None  # its group in EventBridge Scheduler; None: a Schedule event's rule
    next_at: datetime | None = None
    fired: list[datetime] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.next_at = self.schedule.next_after(self.origin, self.origin)

    def due(self, now: datetime) -> list[datetime]:
        """Every firing time up to `now` not fired yet (a late loop catches up, one by one)."""
        out = []
        while self.next_at is not None and self.next_at <= now:
            out.append(self.next_at)
            self.fired.append(self.next_at)
            self.next_at = self.schedule.next_after(self.next_at, self.origin)
        return out

    def payload(self, when: datetime) -> dict[str, Any]:
        # EventBridge Scheduler's default input is the schedule's own context
        template = self.input_template or json.dumps(
            {"schedule": self.name, "scheduled_time": "<aws.scheduler.scheduled-time>"}
        )
        arn = f"arn:aws:scheduler:local:schedule/{self.name}"
        return dict(json.loads(fill_scheduler_placeholders(template, when, arn, str(uuid.uuid4()))))


def runner_for(
    name: str, function: str, props: dict[str, Any], origin: datetime, in_scheduler: bool
) -> ScheduleRunner | None:
    """A schedule in EventBridge Scheduler (ScheduleV2) always has a runner: whether it fires is
    its state there, which the API may pause and resume. A disabled Schedule event (an
    EventBridge rule) has none."""
    if not in_scheduler and (
        str(props.get("State", "ENABLED")).upper() == "DISABLED" or props.get("Enabled") is False
    ):
        return None
    schedule = parse(str(props["ScheduleExpression"]), props.get("ScheduleExpressionTimezone"))
    group = str(props.get("GroupName") or "default") if in_scheduler else None
    return ScheduleRunner(name, function, schedule, props.get("Input"), origin, group)

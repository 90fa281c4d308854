"""Fires the template's schedules (ScheduleV2 / Schedule events) on time, AWS semantics (the
expressions are jobtracker.core.cron's: six-field cron with ? L W # in the schedule's time zone,
rate() counted from when the schedule was created, at()), and
EventBridge Scheduler's <aws.scheduler.scheduled-time> / <aws.scheduler.execution-id>
placeholders filled in the input."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobtracker.core.cron import Schedule, parse


@dataclass
class ScheduleRunner:
    name: str
    function: str
    schedule: Schedule
    input_template: str | None
    origin: datetime
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
        if not self.input_template:
            # EventBridge Scheduler's default input is the schedule's own context
            return {"schedule": self.name, "scheduled_time": _stamp(when)}
        text = self.input_template.replace("<aws.scheduler.scheduled-time>", _stamp(when))
        text = text.replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
        text = text.replace(
            "<aws.scheduler.schedule-arn>", f"arn:aws:scheduler:local:schedule/{self.name}"
        )
        return dict(json.loads(text))


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def runner_for(
    name: str, function: str, props: dict[str, Any], origin: datetime
) -> ScheduleRunner | None:
    """None for a disabled schedule."""
    state = str(props.get("State", "ENABLED")).upper()
    if state == "DISABLED" or props.get("Enabled") is False:
        return None
    schedule = parse(str(props["ScheduleExpression"]), props.get("ScheduleExpressionTimezone"))
    return ScheduleRunner(name, function, schedule, props.get("Input"), origin)

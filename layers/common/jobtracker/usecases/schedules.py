"""The job schedules with where they stand: each one's tick (what it runs, its overlap policy),
its next tick and its latest runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from jobtracker.core.checks import Invalid
from jobtracker.core.cron import ScheduleError, parse
from jobtracker.core.domain import Job
from jobtracker.core.submission import ScheduledRun
from jobtracker.usecases.ports import ScheduleRecord
from jobtracker.wiring import Deps, default_deps


@dataclass(frozen=True)
class ScheduleState:
    record: ScheduleRecord
    tick: ScheduledRun | None  # None: its input is not a tick create_job takes
    next_tick: datetime | None  # None: disabled, or it never fires again
    runs: list[Job] = field(default_factory=list)  # newest first
    problem: str | None = None  # why the schedule cannot tick as it stands

    @property
    def name(self) -> str:
        """The name its jobs carry (GET /jobs?schedule=), else the Scheduler's own."""
        return self.tick.schedule if self.tick else self.record.name


def list_schedules(
    runs: int, read_tick: Callable[[object], ScheduledRun], deps: Deps | None = None
) -> list[ScheduleState]:
    """`read_tick` checks a schedule's input as create_job does (the edge's model)."""
    deps = deps or default_deps()
    now = deps.clock()
    states = [_state(record, now, read_tick) for record in deps.schedules.schedules()]
    for state in states:
        if state.tick is not None and runs:
            found, _ = deps.repo.list_jobs(None, None, state.tick.schedule, runs, None)
            state.runs.extend(found)
    return sorted(states, key=lambda s: s.name)


def _state(
    record: ScheduleRecord, now: datetime, read_tick: Callable[[object], ScheduledRun]
) -> ScheduleState:
    tick: ScheduledRun | None = None
    problem: str | None = None
    try:
        tick = read_tick(json.loads(record.input or ""))
    except json.JSONDecodeError as exc:
        problem = f"its input is not a schedule tick: input: not JSON ({exc.msg})"
    except Invalid as exc:
        problem = f"its input is not a schedule tick: {exc}"
    next_tick: datetime | None = None
    if record.state == "ENABLED":
        try:
            next_tick = parse(record.expression, record.timezone).next_after(now, record.created_at)
        except ScheduleError as exc:
            problem = problem or str(exc)
    return ScheduleState(record, tick, next_tick, problem=problem)

"""The job schedules with where they stand: each one's tick (what it runs, its overlap policy),
its next tick and its latest runs; pausing, resuming and running one now.

A schedule is named by the name its jobs carry (GET /schedules' `name`) or by Scheduler's own.
Run now is the schedule's tick at this second, through the tick's own path (usecases/periodic:
its overlap policy, one job per tick); it runs a paused schedule too, as an operator expects of
a button."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from jobtracker.core.checks import Invalid
from jobtracker.core.cron import ScheduleError, parse
from jobtracker.core.domain import Job
from jobtracker.core.errors import Conflict, NotFound
from jobtracker.core.submission import ScheduledRun, fill_scheduler_placeholders
from jobtracker.usecases.periodic import Outcome, run_tick
from jobtracker.usecases.ports import ScheduleRecord
from jobtracker.wiring import Deps, default_deps

ReadTick = Callable[[object], ScheduledRun]  # the edge's model of a tick (create_job's)
PAUSED, ACTIVE = "DISABLED", "ENABLED"  # Scheduler's states


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


def list_schedules(runs: int, read_tick: ReadTick, deps: Deps | None = None) -> list[ScheduleState]:
    """`read_tick` checks a schedule's input as create_job does (the edge's model)."""
    deps = deps or default_deps()
    now = deps.clock()
    states = [_state(record, now, read_tick) for record in deps.schedules.schedules()]
    for state in states:
        _read_runs(state, runs, deps)
    return sorted(states, key=lambda s: s.name)


def set_paused(
    name: str, paused: bool, runs: int, read_tick: ReadTick, deps: Deps | None = None
) -> ScheduleState:
    """The schedule paused (Scheduler's DISABLED: its ticks do not fire) or resumed; pausing a
    paused one, or resuming an active one, changes nothing."""
    deps = deps or default_deps()
    record = find_schedule(name, read_tick, deps).record
    wanted = PAUSED if paused else ACTIVE
    if record.state != wanted:
        _check_changeable(name, record, deps)
        record = deps.schedules.set_state(record, wanted)
    state = _state(record, deps.clock(), read_tick)
    _read_runs(state, runs, deps)
    return state


@dataclass(frozen=True)
class RunNow:
    job: Job
    created: bool  # False: this second's tick had made it already (a repeated request)


def run_now(name: str, read_tick: ReadTick, caller: str, deps: Deps | None = None) -> RunNow:
    """The schedule's tick at this second; raises Conflict when its input is no tick or its
    overlap policy skips it (Forbid, with a run still active)."""
    deps = deps or default_deps()
    state = find_schedule(name, read_tick, deps)
    if state.tick is None or state.record.input is None:
        raise Conflict(f"schedule {name}: {state.problem}")
    now = deps.clock().replace(microsecond=0)
    text = fill_scheduler_placeholders(state.record.input, now, state.record.arn, str(uuid.uuid4()))
    try:
        tick = read_tick(json.loads(text))
    except Invalid as exc:  # valid with its placeholders, not with them filled in
        raise Conflict(f"schedule {name}: its input is not a schedule tick: {exc}") from None
    result = run_tick(tick, deps, caller=caller)
    if result.outcome is Outcome.SKIPPED:
        raise Conflict(
            f"schedule {name}: not run, its overlap policy is Forbid and its run"
            f" {', '.join(result.active)} is still active"
        )
    job = deps.repo.get(result.job_id)
    if job is None:  # a duplicate tick names a job that exists
        raise NotFound(f"job {result.job_id} not found")
    return RunNow(job, created=result.outcome is Outcome.CREATED)


def find_schedule(name: str, read_tick: ReadTick, deps: Deps) -> ScheduleState:
    """The schedule by the name its jobs carry or by Scheduler's own."""
    now = deps.clock()
    states = [_state(r, now, read_tick) for r in deps.schedules.schedules()]
    by_scheduler = [s for s in states if s.record.name == name]
    found = by_scheduler or [s for s in states if s.name == name]
    if not found:
        raise NotFound(f"schedule {name} not found")
    if len(found) > 1:
        names = ", ".join(sorted(s.record.name for s in found))
        raise Conflict(f"schedule {name}: {len(found)} schedules run as {name} ({names}): name one")
    return found[0]


def _check_changeable(name: str, record: ScheduleRecord, deps: Deps) -> None:
    """UpdateSchedule passes the schedule's role again: the API may pass the stack's schedule
    role only (iam:PassRole), so a schedule made with another role is changed in Scheduler."""
    role = deps.settings.schedule_role_arn
    if role is None or record.role_arn != role:
        raise Conflict(
            f"schedule {name}: it runs as {record.role_arn or 'no role'}, not as the stack's"
            " schedule role (ScheduleRole): change its state in EventBridge Scheduler"
        )


def _read_runs(state: ScheduleState, runs: int, deps: Deps) -> None:
    if state.tick is not None and runs:
        found, _ = deps.repo.list_jobs(None, None, state.tick.schedule, runs, None)
        state.runs.extend(found)


def _state(record: ScheduleRecord, now: datetime, read_tick: ReadTick) -> ScheduleState:
    tick: ScheduledRun | None = None
    problem: str | None = None
    try:
        tick = read_tick(json.loads(record.input or ""))
    except json.JSONDecodeError as exc:
        problem = f"its input is not a schedule tick: input: not JSON ({exc.msg})"
    except Invalid as exc:
        problem = f"its input is not a schedule tick: {exc}"
    next_tick: datetime | None = None
    if record.state == ACTIVE:
        try:
            next_tick = parse(record.expression, record.timezone).next_after(now, record.created_at)
        except ScheduleError as exc:
            problem = problem or str(exc)
    return ScheduleState(record, tick, next_tick, problem=problem)

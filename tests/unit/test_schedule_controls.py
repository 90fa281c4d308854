"""Unit: pausing, resuming and running a schedule now (usecases.schedules), on fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from jobtracker.core.domain import JobStatus
from jobtracker.core.errors import Conflict, InvalidInput, NotFound
from jobtracker.edge.api_models import scheduled_run
from jobtracker.usecases.periodic import scheduled_job_id
from jobtracker.usecases.schedules import run_now, set_paused
from jobtracker.wiring import Deps
from tests.fakes import SCHEDULE_ROLE, FakeClock, FakeLauncher, FakeSchedules, fake_deps
from tests.fakes import schedule_record as record

NOW = datetime(2026, 12, 3, 18, 30, 15, 250000, tzinfo=UTC)
OPERATOR = "arn:aws:iam::123456789012:user/operator"


def deps_with(*records: object) -> tuple[Deps, FakeSchedules]:
    deps = fake_deps(SCHEDULE_ROLE_ARN=SCHEDULE_ROLE)
    deps.clock = FakeClock(NOW)
    schedules = FakeSchedules(*records)  # type: ignore[arg-type]
    deps.schedules = schedules
    return deps, schedules


# ---- pause and resume --------------------------------------------------------------------------


def test_pausing_a_schedule_disables_it_and_it_has_no_next_tick() -> None:
    # GIVEN an active hourly schedule
    deps, schedules = deps_with(record("hourly", "cron(0 * * * ? *)"))
    # WHEN it is paused by the name its jobs carry
    state = set_paused("hourly", True, runs=5, read_tick=scheduled_run, deps=deps)
    # THEN Scheduler was told DISABLED once, and the answer says so with no next tick
    assert schedules.updates == [("stack-hourly", "DISABLED")], schedules.updates
    assert state.record.state == "DISABLED" and state.next_tick is None, state


def test_pausing_a_paused_schedule_changes_nothing() -> None:
    # GIVEN a paused schedule
    deps, schedules = deps_with(record("hourly", "cron(0 * * * ? *)", state="DISABLED"))
    # WHEN it is paused again
    state = set_paused("hourly", True, runs=5, read_tick=scheduled_run, deps=deps)
    # THEN no update is sent and it stays paused
    assert schedules.updates == [], "a repeated pause must not resend the schedule"
    assert state.record.state == "DISABLED"


def test_resuming_a_paused_schedule_enables_it_with_its_next_tick() -> None:
    # GIVEN a paused hourly schedule
    deps, schedules = deps_with(record("hourly", "cron(0 * * * ? *)", state="DISABLED"))
    # WHEN it is resumed by Scheduler's own name
    state = set_paused("stack-hourly", False, runs=5, read_tick=scheduled_run, deps=deps)
    # THEN it is ENABLED and its next tick is the next hour (the paused ones are not caught up)
    assert schedules.updates == [("stack-hourly", "ENABLED")], schedules.updates
    assert state.next_tick == NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def test_an_unknown_schedule_is_not_found() -> None:
    deps, schedules = deps_with(record("hourly", "cron(0 * * * ? *)"))
    with pytest.raises(NotFound, match="schedule nightly not found"):
        set_paused("nightly", True, runs=5, read_tick=scheduled_run, deps=deps)
    assert schedules.updates == []


def test_a_name_two_schedules_run_as_is_refused_naming_both_and_each_answers_to_its_own() -> None:
    # GIVEN two Scheduler schedules whose ticks both carry the name "nightly"
    first = record("nightly", "cron(0 2 * * ? *)")
    second = replace(record("nightly", "cron(0 3 * * ? *)"), name="stack-nightly-2")
    deps, schedules = deps_with(first, second)
    # WHEN paused by that name THEN it is refused, naming both
    with pytest.raises(Conflict, match="stack-nightly, stack-nightly-2"):
        set_paused("nightly", True, runs=5, read_tick=scheduled_run, deps=deps)
    # AND each is paused by its Scheduler name
    set_paused("stack-nightly-2", True, runs=5, read_tick=scheduled_run, deps=deps)
    assert schedules.updates == [("stack-nightly-2", "DISABLED")], schedules.updates


def test_a_schedule_with_another_role_is_not_changed() -> None:
    # GIVEN a schedule made outside the stack with a role of its own
    other = record("hourly", "cron(0 * * * ? *)", role_arn="arn:aws:iam::123456789012:role/mine")
    deps, schedules = deps_with(other)
    # WHEN it is paused THEN it is refused, saying why (the API may pass the stack's role only)
    with pytest.raises(Conflict, match="role/mine, not as the stack's schedule role"):
        set_paused("hourly", True, runs=5, read_tick=scheduled_run, deps=deps)
    assert schedules.updates == [], "nothing may be sent for a role the API cannot pass"


# ---- run now -----------------------------------------------------------------------------------


def test_run_now_creates_and_launches_the_ticks_job_for_this_second_by_the_caller() -> None:
    # GIVEN the nightly schedule, which runs the demo definition
    deps, _ = deps_with(record("nightly", "cron(0 2 * * ? *)", overlap="Forbid"))
    # WHEN an operator runs it now
    ran = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps)
    # THEN the job is the tick of this second (its id, its scheduled time), by the operator,
    # and its task was launched
    assert ran.created is True
    assert ran.job.job_id == scheduled_job_id("nightly", "2026-12-03T18:30:15Z"), ran.job.job_id
    assert ran.job.schedule_name == "nightly"
    assert ran.job.scheduled_time == "2026-12-03T18:30:15Z", ran.job.scheduled_time
    assert ran.job.caller == OPERATOR, "run now must record who ran it"
    assert isinstance(deps.launcher, FakeLauncher) and len(deps.launcher.requests) == 1


def test_run_now_twice_in_one_second_answers_the_same_job_and_launches_once() -> None:
    deps, _ = deps_with(record("nightly", "cron(0 2 * * ? *)"))
    first = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps)
    again = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps)
    assert again.created is False and again.job.job_id == first.job.job_id
    assert isinstance(deps.launcher, FakeLauncher) and len(deps.launcher.requests) == 1


def test_run_now_is_skipped_by_a_forbid_overlap_while_a_run_is_active_naming_it() -> None:
    # GIVEN a Forbid schedule whose earlier run is still active
    deps, _ = deps_with(record("nightly", "cron(0 2 * * ? *)", overlap="Forbid"))
    earlier = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps).job
    assert deps.clock is not None and isinstance(deps.clock, FakeClock)
    deps.clock.advance(5)
    # WHEN it is run now again THEN it is refused, naming the active run, and no job is made
    with pytest.raises(Conflict, match=f"its run {earlier.job_id} is still active"):
        run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps)
    assert len(deps.repo.jobs) == 1  # type: ignore[attr-defined]


def test_run_now_with_a_replace_overlap_cancels_the_active_run() -> None:
    deps, _ = deps_with(record("nightly", "cron(0 2 * * ? *)", overlap="Replace"))
    earlier = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps).job
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(5)
    later = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps).job
    replaced = deps.repo.get(earlier.job_id)
    assert replaced is not None and replaced.status in (JobStatus.CANCELLING, JobStatus.CANCELLED)
    assert later.job_id != earlier.job_id


def test_run_now_runs_a_paused_schedule_and_leaves_it_paused() -> None:
    deps, schedules = deps_with(record("nightly", "cron(0 2 * * ? *)", state="DISABLED"))
    ran = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps)
    assert ran.created is True
    assert schedules.records[0].state == "DISABLED" and schedules.updates == []


def test_run_now_of_a_schedule_whose_input_is_no_tick_is_refused_with_its_problem() -> None:
    # GIVEN a schedule whose input lacks its job's definition
    broken = record("broken", "rate(1 hour)", job={"parameters": {}})
    deps, _ = deps_with(broken)
    # WHEN it is run now (by Scheduler's name: no tick names it otherwise)
    # THEN it is refused with the problem GET /schedules shows, and nothing is made
    with pytest.raises(Conflict, match=r"its input is not a schedule tick: job\.definition"):
        run_now("stack-broken", scheduled_run, caller=OPERATOR, deps=deps)
    assert deps.repo.jobs == {}  # type: ignore[attr-defined]


def test_a_replace_tick_whose_job_is_refused_cancels_no_run() -> None:
    # GIVEN a Replace schedule with an active run, whose input now names an unknown definition
    good = record("nightly", "cron(0 2 * * ? *)", overlap="Replace")
    deps, schedules = deps_with(good)
    earlier = run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps).job
    schedules.records[0] = replace(
        good, input=good.input.replace('"demo"', '"no-such"') if good.input else None
    )
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(5)
    # WHEN it is run now THEN it is refused, and the active run goes on
    with pytest.raises(InvalidInput, match="no-such"):
        run_now("nightly", scheduled_run, caller=OPERATOR, deps=deps)
    still = deps.repo.get(earlier.job_id)
    assert still is not None and not still.stop_request, "a refused tick must not cancel a run"

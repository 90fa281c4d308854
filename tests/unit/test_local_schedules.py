"""Unit: the local stack fires the template's schedules on time, with the tick's time filled in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobtracker_local import template as tpl
from jobtracker_local.schedules import runner_for
from jobtracker_local.state import schedule_states

START = datetime(2026, 11, 24, 5, 3, 20, tzinfo=UTC)


def test_cron_schedule_fires_at_each_tick_with_its_scheduled_time() -> None:
    runner = runner_for(
        "s",
        "F",
        {
            "ScheduleExpression": "cron(0/10 * * * ? *)",
            "Input": '{"t": "<aws.scheduler.scheduled-time>"}',
        },
        START,
        in_scheduler=True,
    )
    assert runner is not None
    assert runner.due(START + timedelta(minutes=6)) == []
    ticks = runner.due(datetime(2026, 11, 24, 5, 31, tzinfo=UTC))
    assert [t.strftime("%H:%M") for t in ticks] == ["05:10", "05:20", "05:30"]
    assert runner.payload(ticks[0]) == {"t": "2026-11-24T05:10:00Z"}
    assert runner.due(datetime(2026, 11, 24, 5, 31, tzinfo=UTC)) == []  # each tick once


def test_rate_schedule_counts_from_creation() -> None:
    runner = runner_for("r", "F", {"ScheduleExpression": "rate(1 minute)"}, START, False)
    assert runner is not None
    assert runner.due(START + timedelta(seconds=59)) == []
    assert runner.due(START + timedelta(seconds=121)) == [
        START + timedelta(minutes=1),
        START + timedelta(minutes=2),
    ]


def test_a_disabled_rule_schedule_never_fires() -> None:
    # GIVEN a Schedule event (an EventBridge rule) the template disables
    props = {"ScheduleExpression": "rate(1 minute)", "State": "DISABLED"}
    # WHEN the local stack makes its runner
    # THEN it has none: nothing can enable a rule at run time
    assert runner_for("d", "F", props, START, in_scheduler=False) is None


def test_a_disabled_scheduler_schedule_has_a_runner_in_its_group() -> None:
    # GIVEN a ScheduleV2 event the template creates DISABLED (the API may resume it)
    props = {"ScheduleExpression": "rate(1 minute)", "State": "DISABLED", "GroupName": "g"}
    # WHEN the local stack makes its runner
    runner = runner_for("d", "F", props, START, in_scheduler=True)
    # THEN it has one, which reads its state in that group of Scheduler before it fires
    assert runner is not None, "a paused Scheduler schedule must be resumable"
    assert runner.group == "g"


def test_every_schedule_in_the_template_parses_and_its_input_is_a_valid_tick() -> None:
    from jobtracker.edge.api_models import scheduled_run

    template = tpl.load()
    found = 0
    for res in template["Resources"].values():
        for event in (res.get("Properties", {}).get("Events") or {}).values():
            if event["Type"] not in ("ScheduleV2", "Schedule"):
                continue
            found += 1
            props = dict(event["Properties"], State="ENABLED")
            runner = runner_for("x", "F", props, START, event["Type"] == "ScheduleV2")
            assert runner is not None and runner.next_at is not None
            if "Input" in props:
                scheduled_run(runner.payload(runner.next_at))
    assert found >= 2  # the demo schedule and the reconciler


class Gone(Exception):
    pass


class PausableScheduler:
    """moto's Scheduler as the local stack reads it: the schedules' state, or gone."""

    class exceptions:
        ResourceNotFoundException = Gone

    def __init__(self, state: str, gone: tuple[str, ...] = ()) -> None:
        self.state = state
        self.gone = gone

    def get_schedule(self, Name: str, GroupName: str) -> dict[str, str]:
        if Name in self.gone:
            raise Gone(Name)
        return {"Name": Name, "GroupName": GroupName, "State": self.state}


def test_the_local_stack_skips_the_times_of_a_paused_schedule_and_fires_once_resumed(
    tmp_path: Path,
) -> None:
    from jobtracker_local.stack import LocalStack

    # GIVEN a Scheduler schedule, every minute for the last 2.5 minutes, paused there
    stack = LocalStack(tmp_path, state_dir=tmp_path / "state")
    now = datetime.now(UTC)
    props = {"ScheduleExpression": "rate(1 minute)", "GroupName": "jobs"}
    runner = runner_for("s", "F", props, now - timedelta(seconds=150), in_scheduler=True)
    assert runner is not None
    stack.schedules = [runner]
    scheduler = PausableScheduler("DISABLED")
    stack.scheduler_client = scheduler
    fired: list[dict[str, object]] = []
    stack._invoke_retrying = lambda function, event, tries, pause: fired.append(event)  # type: ignore[method-assign]
    # WHEN the stack looks at its schedules
    stack._fire_schedules()
    # THEN the paused times passed unfired (Scheduler does not catch them up), and the state
    # is kept for the next start
    assert fired == [], fired
    assert schedule_states(tmp_path / "state") == {"s": "DISABLED"}
    # AND WHEN it is resumed and its next time comes THEN that one fires
    scheduler.state = "ENABLED"
    runner.next_at = datetime.now(UTC) - timedelta(seconds=1)
    stack._fire_schedules()
    assert len(fired) == 1, fired
    assert schedule_states(tmp_path / "state") == {"s": "ENABLED"}


def test_a_schedule_deleted_in_scheduler_stops_firing_and_holds_up_no_other(
    tmp_path: Path,
) -> None:
    from jobtracker_local.stack import LocalStack

    # GIVEN two due Scheduler schedules, the first deleted from Scheduler
    stack = LocalStack(tmp_path, state_dir=tmp_path / "state")
    start = datetime.now(UTC) - timedelta(seconds=90)
    props = {"ScheduleExpression": "rate(1 minute)", "GroupName": "jobs"}
    runners = [runner_for(n, "F", props, start, in_scheduler=True) for n in ("gone", "kept")]
    stack.schedules = [r for r in runners if r is not None]
    stack.scheduler_client = PausableScheduler("ENABLED", gone=("gone",))
    fired: list[dict[str, object]] = []
    stack._invoke_retrying = lambda function, event, tries, pause: fired.append(event)  # type: ignore[method-assign]
    # WHEN the stack looks at its schedules
    stack._fire_schedules()
    # THEN the deleted one is dropped and the other fired its due time
    assert [r.name for r in stack.schedules] == ["kept"], stack.schedules
    assert [e["schedule"] for e in fired] == ["kept"], fired

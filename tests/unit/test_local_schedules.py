"""Unit: the local stack fires the template's schedules on time, with the tick's time filled in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobtracker_local import template as tpl
from jobtracker_local.schedules import runner_for

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
    )
    assert runner is not None
    assert runner.due(START + timedelta(minutes=6)) == []
    ticks = runner.due(datetime(2026, 11, 24, 5, 31, tzinfo=UTC))
    assert [t.strftime("%H:%M") for t in ticks] == ["05:10", "05:20", "05:30"]
    assert runner.payload(ticks[0]) == {"t": "2026-11-24T05:10:00Z"}
    assert runner.due(datetime(2026, 11, 24, 5, 31, tzinfo=UTC)) == []  # each tick once


def test_rate_schedule_counts_from_creation_and_disabled_never_fires() -> None:
    runner = runner_for("r", "F", {"ScheduleExpression": "rate(1 minute)"}, START)
    assert runner is not None
    assert runner.due(START + timedelta(seconds=59)) == []
    assert runner.due(START + timedelta(seconds=121)) == [
        START + timedelta(minutes=1),
        START + timedelta(minutes=2),
    ]
    assert (
        runner_for("d", "F", {"ScheduleExpression": "rate(1 minute)", "State": "DISABLED"}, START)
        is None
    )


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
            runner = runner_for("x", "F", props, START)
            assert runner is not None and runner.next_at is not None
            if "Input" in props:
                scheduled_run(runner.payload(runner.next_at))
    assert found >= 2  # the demo schedule and the reconciler

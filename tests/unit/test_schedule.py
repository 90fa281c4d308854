"""Unit: AWS schedule expressions (rate and six-field cron, UTC, ? L W #)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobtracker.core.cron import ScheduleError, parse

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday


def nxt(expr: str, after: datetime = T0) -> str:
    t = parse(expr).next_after(after)
    assert t is not None
    return t.strftime("%Y-%m-%d %H:%M %a")


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("cron(0 10 * * ? *)", "2026-11-24 10:00 Tue"),
        ("cron(0/15 * * * ? *)", "2026-11-24 09:15 Tue"),
        ("cron(0 8 ? * MON-FRI *)", "2026-11-25 08:00 Wed"),
        ("cron(15 10 ? * 6L 2026)", "2026-11-27 10:15 Fri"),  # last Friday
        ("cron(0 12 L * ? *)", "2026-11-30 12:00 Mon"),  # last day of the month
        ("cron(0 9 15W * ? *)", "2026-12-15 09:00 Tue"),  # Nov 15 (Sun) → Mon 16 passed; Dec 15
        ("cron(0 9 ? * 3#2 *)", "2026-12-08 09:00 Tue"),  # second Tuesday
        ("cron(30 6 1 JAN,JUL ? *)", "2027-01-01 06:30 Fri"),
        ("cron(0 0 ? * 1 *)", "2026-11-29 00:00 Sun"),  # 1 = SUN
        ("cron(0 9 LW * ? *)", "2026-11-30 09:00 Mon"),
    ],
)
def test_cron_next_firing(expr: str, expected: str) -> None:
    assert nxt(expr) == expected


def test_nearest_weekday_of_a_sunday_is_monday() -> None:
    assert nxt("cron(0 9 15W * ? *)", datetime(2026, 11, 1, tzinfo=UTC)) == "2026-11-16 09:00 Mon"
    # the 28th of Feb 2026 is a Saturday → Friday 27th
    assert nxt("cron(0 9 28W 2 ? *)", datetime(2026, 1, 1, tzinfo=UTC)) == "2026-02-27 09:00 Fri"


def test_rate_counts_from_its_origin() -> None:
    origin = datetime(2026, 11, 24, 8, 58, 30, tzinfo=UTC)
    s = parse("rate(5 minutes)")
    assert s.next_after(T0, origin) == datetime(2026, 11, 24, 9, 3, 30, tzinfo=UTC)
    assert parse("rate(1 hour)").next_after(T0, T0) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "expr",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "cron(0 10 * * *)",
        "cron(0 10 * * * *)",
        "cron(0 10 ? * ? *)",
        "cron(61 10 * * ? *)",
        "cron(0 25 * * ? *)",
        "cron(0 10 32 * ? *)",
        "cron(0 10 ? * 8 *)",
        "cron(0 10 ? * 3#6 *)",
        "cron(0 10 ? * FOO *)",
        "cron(0 10 * 13 ? *)",
        "every day",
        "cron(0/0 * * * ? *)",
        "cron(0 10 0W * ? *)",
        "cron(0 10 40W * ? *)",
        "cron(0 10 ? * 9#2 *)",
        "cron(0 10 ? * 8L *)",
    ],
)
def test_invalid_expressions_are_rejected(expr: str) -> None:
    with pytest.raises(ScheduleError):
        parse(expr)


def test_cron_reads_its_fields_in_the_schedules_time_zone() -> None:
    # 09:00 in Paris is 08:00 UTC in winter (CET, UTC+1)
    s = parse("cron(0 9 * * ? *)", "Europe/Paris")
    assert s.next_after(T0) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_a_one_time_schedule_fires_once() -> None:
    s = parse("at(2026-11-24T10:30:00)")
    assert s.next_after(T0) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert s.next_after(datetime(2026, 11, 24, 11, 0, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("expr", "zone"), [("at(2026-13-01T00:00:00)", None), ("rate(1 hour)", "Mars/Olympus")]
)
def test_a_bad_date_or_time_zone_is_rejected(expr: str, zone: str | None) -> None:
    with pytest.raises(ScheduleError):
        parse(expr, zone)

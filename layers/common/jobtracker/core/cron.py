"""EventBridge Scheduler expressions: `rate(N unit)`, `at(yyyy-mm-ddThh:mm:ss)` and six-field
`cron(min hour dom month dow year)` with `?`, `L`, `W`, `#`, names (JAN, MON) and day-of-week
1-7 = SUN-SAT, in the schedule's time zone (UTC unless it names one) — parsed, validated and
stepped to the next firing time. Pure rules: the API shows each schedule's next tick with it,
the local stack fires the template's schedules with it."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    pass


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    out: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"bad increment in {field!r}")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _one(a, names), _one(b, names)
        else:
            start = _one(part, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{field!r} out of range {low}-{high}")
        if start <= end:
            out.update(range(start, end + 1, step))
        else:  # wrap-around range such as FRI-MON
            out.update(
                v
                for i, v in enumerate(list(range(start, high + 1)) + list(range(low, end + 1)))
                if i % step == 0
            )
    return out


def _one(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"{text!r} is not a number{' or name' if names else ''}")
    return int(text)


def _day_of_week(text: str) -> int:
    day = _one(text, DAYS)
    if not 1 <= day <= 7:
        raise ScheduleError(f"day of week {text!r} out of range 1-7")
    return day


@dataclass(frozen=True)
class DaysOfMonth:
    """The day-of-month field, parsed once: plain days, `L`, `LW` and `nW`."""

    days: frozenset[int] = frozenset()
    last: bool = False  # L
    last_weekday: bool = False  # LW
    nearest_weekday: frozenset[int] = frozenset()  # nW: the weekday nearest the nth

    @classmethod
    def parse(cls, field: str) -> DaysOfMonth:
        days: set[int] = set()
        nearest: set[int] = set()
        last = last_weekday = False
        for part in field.split(","):
            if part == "L":
                last = True
            elif part == "LW":
                last_weekday = True
            elif re.fullmatch(r"\d{1,2}W", part):
                if not 1 <= int(part[:-1]) <= 31:
                    raise ScheduleError(f"{part!r} out of range 1-31")
                nearest.add(int(part[:-1]))
            else:
                days |= _values(part, 1, 31)
        return cls(frozenset(days), last, last_weekday, frozenset(nearest))

    def matches(self, d: date) -> bool:
        last = calendar.monthrange(d.year, d.month)[1]
        return (
            d.day in self.days
            or (self.last and d.day == last)
            or (self.last_weekday and d == _nearest_weekday(date(d.year, d.month, last)))
            or any(
                d == _nearest_weekday(date(d.year, d.month, min(n, last)))
                for n in self.nearest_weekday
            )
        )


@dataclass(frozen=True)
class DaysOfWeek:
    """The day-of-week field, parsed once (1-7 = SUN-SAT): plain days (`L` is 7), `nL` (the
    last such day of the month) and `n#k` (the kth such day)."""

    days: frozenset[int] = frozenset()
    last_of_month: frozenset[int] = frozenset()  # nL
    nth: frozenset[tuple[int, int]] = frozenset()  # n#k as (n, k)

    @classmethod
    def parse(cls, field: str) -> DaysOfWeek:
        days: set[int] = set()
        last_of_month: set[int] = set()
        nth: set[tuple[int, int]] = set()
        for part in field.split(","):
            if "#" in part:
                day, k = part.split("#", 1)
                if not k.isdigit() or not 1 <= int(k) <= 5:
                    raise ScheduleError(f"bad '#' in {part!r}")
                nth.add((_day_of_week(day), int(k)))
            elif part == "L":
                days.add(7)
            elif part.endswith("L"):
                last_of_month.add(_day_of_week(part[:-1]))
            else:
                days |= _values(part, 1, 7, DAYS)
        return cls(frozenset(days), frozenset(last_of_month), frozenset(nth))

    def matches(self, d: date) -> bool:
        weekday = (d.isoweekday() % 7) + 1  # SUN=1 … SAT=7
        last = calendar.monthrange(d.year, d.month)[1]
        return (
            weekday in self.days
            or (weekday in self.last_of_month and d.day + 7 > last)
            or (weekday, (d.day - 1) // 7 + 1) in self.nth
        )


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: DaysOfMonth | DaysOfWeek  # whichever of the two day fields is not `?`
    months: frozenset[int]
    years: frozenset[int]

    def day_matches(self, d: date) -> bool:
        return d.month in self.months and d.year in self.years and self.days.matches(d)

    def next_after(self, after: datetime, zone: tzinfo = UTC) -> datetime | None:
        """The fields read as wall-clock time in `zone`; the answer is in UTC."""
        start = after.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        for _ in range(366 * 5):
            if self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        t = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                        if t >= start:
                            return t.astimezone(UTC)
            day += timedelta(days=1)
        return None


def _nearest_weekday(d: date) -> date:
    if d.weekday() == 5:  # Saturday → Friday, unless that leaves the month
        return d - timedelta(days=1) if d.day > 1 else d + timedelta(days=2)
    if d.weekday() == 6:  # Sunday → Monday, unless that leaves the month
        last = calendar.monthrange(d.year, d.month)[1]
        return d + timedelta(days=1) if d.day < last else d - timedelta(days=2)
    return d


def parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(
            "cron() needs exactly six fields: minutes hours day-of-month month day-of-week year"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    return Cron(
        minutes=frozenset(_values(minute, 0, 59)),
        hours=frozenset(_values(hour, 0, 23)),
        days=DaysOfWeek.parse(dow) if dom == "?" else DaysOfMonth.parse(dom),
        months=frozenset(_values(month, 1, 12, MONTHS)),
        years=frozenset(_values(year, 1970, 2199)),
    )


def zone_of(name: str | None) -> tzinfo:
    """A ScheduleExpressionTimezone (an IANA name); UTC when none is given."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Schedule:
    expression: str
    cron: Cron | None = None
    rate_seconds: int | None = None
    at: datetime | None = None  # a one-time schedule, as wall-clock time (no zone)
    zone: tzinfo = UTC

    def next_after(self, after: datetime, origin: datetime | None = None) -> datetime | None:
        """The next firing strictly after `after`, in UTC (None: it never fires again). Rates
        count from `origin` (when the schedule was created), like EventBridge."""
        if self.cron is not None:
            return self.cron.next_after(after, self.zone)
        if self.at is not None:
            when = self.at.replace(tzinfo=self.zone).astimezone(UTC)
            return when if when > after else None
        assert self.rate_seconds is not None
        base = origin or after
        elapsed = (after - base).total_seconds()
        periods = int(elapsed // self.rate_seconds) + 1
        return base + timedelta(seconds=periods * self.rate_seconds)


def parse(expression: str, timezone: str | None = None) -> Schedule:
    expression = expression.strip()
    zone = zone_of(timezone)
    once = AT.match(expression)
    if once:
        try:
            return Schedule(expression, at=datetime.fromisoformat(once.group(1)), zone=zone)
        except ValueError:
            raise ScheduleError(f"not a date and time: {expression!r}") from None
    match = RATE.match(expression)
    if match:
        value, unit = int(match.group(1)), match.group(2)
        if value == 0:
            raise ScheduleError("rate() needs a positive value")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(
                f"rate({value} {unit}): use the singular unit for 1, the plural otherwise"
            )
        return Schedule(expression, rate_seconds=value * UNIT_SECONDS[unit.rstrip("s")])
    if expression.startswith("cron(") and expression.endswith(")"):
        return Schedule(expression, cron=parse_cron(expression[5:-1]), zone=zone)
    raise ScheduleError(
        f"not a schedule expression: {expression!r} (rate(...), cron(...) or at(...))"
    )

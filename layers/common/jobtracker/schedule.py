"""AWS schedule expressions: `rate(N unit)` and six-field `cron(min hour dom month dow year)` in
UTC, with `?`, `L`, `W`, `#`, names (JAN, MON) and day-of-week 1-7 = SUN-SAT — parsed, validated
and stepped to the next firing time. The local stack fires schedules with this; the template's
expressions are validated with it."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
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


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: str
    months: frozenset[int]
    dow: str
    years: frozenset[int]

    def _dom_matches(self, d: date) -> bool:
        last = calendar.monthrange(d.year, d.month)[1]
        for part in self.dom.split(","):
            if part == "L":
                if d.day == last:
                    return True
            elif part == "LW":
                if d == _nearest_weekday(date(d.year, d.month, last)):
                    return True
            elif part.endswith("W"):
                target = min(int(part[:-1]), last)
                if d == _nearest_weekday(date(d.year, d.month, target)):
                    return True
            elif d.day in _values(part, 1, 31):
                return True
        return False

    def _dow_matches(self, d: date) -> bool:
        weekday = (d.isoweekday() % 7) + 1  # SUN=1 … SAT=7
        last = calendar.monthrange(d.year, d.month)[1]
        for part in self.dow.split(","):
            if "#" in part:
                day, nth = part.split("#", 1)
                if weekday == _one(day, DAYS) and (d.day - 1) // 7 + 1 == int(nth):
                    return True
            elif part.endswith("L") and part != "L":
                if weekday == _one(part[:-1], DAYS) and d.day + 7 > last:
                    return True
            elif part == "L":
                if weekday == 7:
                    return True
            elif weekday in _values(part, 1, 7, DAYS):
                return True
        return False

    def day_matches(self, d: date) -> bool:
        if d.month not in self.months or d.year not in self.years:
            return False
        if self.dom == "?":
            return self._dow_matches(d)
        return self._dom_matches(d)

    def next_after(self, after: datetime) -> datetime | None:
        start = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        for _ in range(366 * 5):
            if self.day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        t = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if t >= start:
                            return t
            day += timedelta(days=1)
        return None


def _nearest_weekday(d: date) -> date:
    if d.weekday() == 5:  # Saturday → Friday, unless that leaves the month
        return d - timedelta(days=1) if d.day > 1 else d + timedelta(days=2)
    if d.weekday() == 6:  # Sunday → Monday, unless that leaves the month
        last = calendar.monthrange(d.year, d.month)[1]
        return d + timedelta(days=1) if d.day < last else d - timedelta(days=2)
    return d


def _check_day_field(text: str, allowed: str) -> None:
    if not re.fullmatch(allowed, text):
        raise ScheduleError(f"unsupported day field {text!r}")


def parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(
            "cron() needs exactly six fields: minutes hours day-of-month month day-of-week year"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    if dom != "?":
        for part in dom.split(","):
            if part not in ("L", "LW") and not re.fullmatch(r"\d{1,2}W", part):
                _values(part, 1, 31)
    if dow != "?":
        for part in dow.split(","):
            if "#" in part:
                day, nth = part.split("#", 1)
                _one(day, DAYS)
                if not nth.isdigit() or not 1 <= int(nth) <= 5:
                    raise ScheduleError(f"bad '#' in {part!r}")
            elif part.endswith("L") and part != "L":
                _one(part[:-1], DAYS)
            elif part != "L":
                _values(part, 1, 7, DAYS)
    return Cron(
        minutes=frozenset(_values(minute, 0, 59)),
        hours=frozenset(_values(hour, 0, 23)),
        dom=dom,
        months=frozenset(_values(month, 1, 12, MONTHS)),
        dow=dow,
        years=frozenset(_values(year, 1970, 2199)),
    )


@dataclass(frozen=True)
class Schedule:
    expression: str
    cron: Cron | None = None
    rate_seconds: int | None = None

    def next_after(self, after: datetime, origin: datetime | None = None) -> datetime | None:
        """The next firing strictly after `after`. Rates count from `origin` (when the
        schedule was created), like EventBridge."""
        if self.cron is not None:
            return self.cron.next_after(after)
        assert self.rate_seconds is not None
        base = origin or after
        elapsed = (after - base).total_seconds()
        periods = int(elapsed // self.rate_seconds) + 1
        return base + timedelta(seconds=periods * self.rate_seconds)


def parse(expression: str) -> Schedule:
    expression = expression.strip()
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
        return Schedule(expression, cron=parse_cron(expression[5:-1]))
    raise ScheduleError(f"not a schedule expression: {expression!r} (rate(...) or cron(...))")

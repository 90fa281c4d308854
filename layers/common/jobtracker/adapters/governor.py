"""The launch governor: one DynamoDB item every launcher shares, so the deployment never asks
ECS for more than the account allows (Fargate: 20 task launches a second, bursts of 100).

GCRA (the generic cell rate algorithm): the item holds the theoretical arrival time `t` of
the next launch. A launch may go when `t` is no later than now + (burst - 1) x interval, and
moves `t` on by one interval. One conditional UpdateItem per launch in the common case, and
one per chunk of an array's fan-out or page of released dependents (the slots it can have, in
one write).

Reservations (`reserve` with a horizon): a launch that may not go now books the first free
slot within `horizon` seconds instead of being refused, the same one write: `t` moves on as
for a launch now, and the caller is told when its slot is (the stored `t` comes back with the
write, so two launchers booking at once get distinct slots). The caller then launches at that
time without asking again. Refused jobs used to be told "the next slot is in x s", all the
same x: they woke together, 18 a second got slots and the rest wrote a wait and asked again
(issue 24: p95 submit -> RUNNING 20-26 s where the backlog needed about 6 s).
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from jobtracker.adapters.models import LaunchGovernor, bind, refused

KEY = "governor#launches"
TRIES = 5
# The governor keeps under the account's limit: a slot is taken a moment before its RunTask
# reaches ECS, and that moment varies; running at 90% (and one short of the burst) leaves the
# margin that keeps ECS from ever throttling.
MARGIN = 0.9
_t = LaunchGovernor.next_at


class DynamoGovernor:
    def __init__(self, table_name: str, rate: float, burst: int) -> None:
        """rate, burst: the account's limits (the governor keeps its MARGIN under them)."""
        self.table_name = table_name
        self.interval = 1.0 / (rate * MARGIN)
        self.burst = max(1, burst - 1)
        self.seen: float | None = None  # the last `t` this container saw (a hint only)

    def acquire_many(self, now: datetime, wanted: int) -> tuple[int, float]:
        """Up to `wanted` slots now, in one write (an array's fan-out launching a chunk): how
        many it got, and how long until the next one (0.0 when it got all it wanted)."""
        slots, wait = self.reserve(now, wanted, 0.0)
        return len(slots), wait

    def booked_until(self) -> float | None:
        """No slot is booked later than this (epoch seconds; None: no launch yet)."""
        bind(self.table_name)
        return self._stored()

    def reserve(self, now: datetime, wanted: int, horizon: float) -> tuple[list[float], float]:
        """Up to `wanted` slots no later than `horizon` seconds from now, in one write: each
        slot's time as seconds from now (0.0: now), in order, and how long until the next slot
        comes within the horizon (0.0 when it got all it wanted)."""
        bind(self.table_name)
        at = now.timestamp()
        # the latest `t` that still admits (1 ms of slack: times are floats of ~1.7e9 seconds)
        latest = at + horizon + (self.burst - 1) * self.interval + 0.001
        # Which case to try first: the last `t` this container saw says whether launches are
        # flowing (busy) or the bucket has refilled (idle). A wrong guess costs one more call
        # (and a refusal one read: pynamodb cannot return the refused item with the refusal).
        stored = self.seen
        for _ in range(TRIES):
            if stored is not None and stored > latest:
                self.seen = stored
                return [], stored - latest
            if stored is None or stored <= at:
                # Idle: the bucket is full again; the slots start from now.
                got = min(wanted, int((latest - at) / self.interval) + 1)
                condition = _t.does_not_exist() | (_t <= at)
                action = _t.set(at + got * self.interval)
            else:
                # `got` more after the last, wherever it is now, if the last of them is not too
                # far (the sum is DynamoDB's: no float of ours must equal its decimal)
                got = min(wanted, int((latest - stored) / self.interval) + 1)
                condition = (_t > at) & (_t <= latest - (got - 1) * self.interval)
                action = _t.set(_t + got * self.interval)
            end = self._update(condition, action)
            if end is not None:
                self.seen = end
                return self._times(end, got, at), (0.0 if got == wanted else max(0.0, end - latest))
            stored = self._stored()
        return [], self.interval  # heavy contention: a slot is a moment away

    def _times(self, end: float, got: int, at: float) -> list[float]:
        """When each of the `got` slots just taken may go, from the `t` the write left: slot k
        had `t` = start + k x interval before it, and goes once that is within the burst."""
        start = end - got * self.interval
        ahead = (self.burst - 1) * self.interval
        times = (start + k * self.interval - ahead - at for k in range(got))
        return [round(t, 3) if t > 0.001 else 0.0 for t in times]

    def _update(self, condition: Condition, action: Action) -> float | None:
        """The write, and the `t` it left (None: refused)."""
        item = LaunchGovernor(KEY)
        try:
            item.update(
                actions=[action, LaunchGovernor.kind.set(LaunchGovernor.KIND)], condition=condition
            )
        except PynamoDBException as exc:
            if refused(exc):
                return None
            raise
        assert item.next_at is not None
        return float(item.next_at)

    def _stored(self) -> float | None:
        """The cell's `t` as stored now (None: no launch yet)."""
        try:
            return LaunchGovernor.get(KEY, consistent_read=True).next_at
        except LaunchGovernor.DoesNotExist:
            return None

"""The launch governor: one DynamoDB item every launcher shares, so the deployment never asks
ECS for more than the account allows (Fargate: 20 task launches a second, bursts of 100).

GCRA (the generic cell rate algorithm): the item holds the theoretical arrival time `t` of
the next launch. A launch may go when `t` is no later than now + (burst - 1) x interval, and
moves `t` on by one interval. One conditional UpdateItem per launch in the common case, and
one per chunk of an array's fan-out (`acquire_many`: the slots a chunk can have, in one write).
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

    def acquire(self, now: datetime) -> float:
        """One slot: 0.0 when it is taken, else how long until the next."""
        got, wait = self.acquire_many(now, 1)
        return 0.0 if got else wait

    def acquire_many(self, now: datetime, wanted: int) -> tuple[int, float]:
        """Up to `wanted` slots in one write (an array's fan-out launching a chunk): how many
        it got, and how long until the next one (0.0 when it got all it wanted)."""
        bind(self.table_name)
        at = now.timestamp()
        # the latest `t` that still admits (1 ms of slack: times are floats of ~1.7e9 seconds)
        latest = at + (self.burst - 1) * self.interval + 0.001
        # Which case to try first: the last `t` this container saw says whether launches are
        # flowing (busy) or the bucket has refilled (idle). A wrong guess costs one more call
        # (and a refusal one read: pynamodb cannot return the refused item with the refusal).
        stored = self.seen
        for _ in range(TRIES):
            if stored is not None and stored > latest:
                self.seen = stored
                return 0, stored - latest
            if stored is None or stored <= at:
                # Idle: the bucket is full again; the slots start from now.
                got = min(wanted, self.burst)
                condition = _t.does_not_exist() | (_t <= at)
                action, start = _t.set(at + got * self.interval), at
            else:
                # `got` more after the last, wherever it is now, if the last of them is not too
                # far (the sum is DynamoDB's: no float of ours must equal its decimal)
                got = min(wanted, int((latest - stored) / self.interval) + 1)
                condition = (_t > at) & (_t <= latest - (got - 1) * self.interval)
                action, start = _t.set(_t + got * self.interval), stored
            if self._update(condition, action):
                self.seen = start + got * self.interval
                return got, (0.0 if got == wanted else max(0.0, self.seen - latest))
            stored = self._stored()
        return 0, self.interval  # heavy contention: a slot is a moment away

    def _update(self, condition: Condition, action: Action) -> bool:
        try:
            LaunchGovernor(KEY).update(
                actions=[action, LaunchGovernor.kind.set(LaunchGovernor.KIND)], condition=condition
            )
        except PynamoDBException as exc:
            if refused(exc):
                return False
            raise
        return True

    def _stored(self) -> float | None:
        """The cell's `t` as stored now (None: no launch yet)."""
        try:
            return LaunchGovernor.get(KEY, consistent_read=True).next_at
        except LaunchGovernor.DoesNotExist:
            return None

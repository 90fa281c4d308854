"""Running limits per job definition: one item per limited definition in the jobs table
(models.RunningSlots), holding the set of attempts that have a slot (`<job id>#<attempt>`).

A String Set makes every call idempotent: adding a holder twice or removing one that is gone
changes nothing, so a retried launch or a redelivered STOPPED never miscounts. Taking a slot is
one conditional UpdateItem (the set is smaller than the limit, or already holds this attempt);
giving it back is one unconditional UpdateItem. Definitions without a limit never touch it.
"""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import size

from jobtracker.adapters.models import RunningSlots, bind, refused

_h = RunningSlots.holders


def key(definition: str) -> str:
    return f"limit#{definition}"


class DynamoRunningLimits:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def acquire(self, definition: str, holder: str, limit: int) -> bool:
        bind(self.table_name)
        try:
            RunningSlots(key(definition)).update(
                actions=[_h.add({holder}), RunningSlots.kind.set(RunningSlots.KIND)],
                condition=_h.does_not_exist() | (size(_h) < limit) | _h.contains(holder),
            )
        except PynamoDBException as exc:
            if refused(exc):
                return False
            raise
        return True

    def release(self, definition: str, *holders: str) -> None:
        if not holders:
            return
        bind(self.table_name)
        RunningSlots(key(definition)).update(actions=[_h.delete(set(holders))])

    def holders(self, definition: str) -> set[str]:
        bind(self.table_name)
        try:
            slots = RunningSlots.get(key(definition), consistent_read=True)
        except RunningSlots.DoesNotExist:
            return set()
        return set(slots.holders or ())

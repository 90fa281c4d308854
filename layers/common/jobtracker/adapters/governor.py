"""The launch governor: one DynamoDB item every launcher shares, so the deployment never asks
ECS for more than the account allows (Fargate: 20 task launches a second, bursts of 100).

GCRA (the generic cell rate algorithm): the item holds the theoretical arrival time `t` of
the next launch. A launch may go when `t` is no later than now + (burst - 1) x interval, and
moves `t` on by one interval. One conditional UpdateItem per launch in the common case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobtracker.adapters.aws import client
from jobtracker.adapters.records import from_wire

KEY = "governor#launches"
TRIES = 5
# The governor keeps under the account's limit: a slot is taken a moment before its RunTask
# reaches ECS, and that moment varies; running at 90% (and one short of the burst) leaves the
# margin that keeps ECS from ever throttling.
MARGIN = 0.9


class DynamoGovernor:
    def __init__(self, table_name: str, rate: float, burst: int) -> None:
        """rate, burst: the account's limits (the governor keeps its MARGIN under them)."""
        self.table_name = table_name
        self.interval = 1.0 / (rate * MARGIN)
        self.burst = max(1, burst - 1)
        self.seen: float | None = None  # the last `t` this container saw (a hint only)

    def acquire(self, now: datetime) -> float:
        at = now.timestamp()
        # the latest `t` that still admits (1 ms of slack: times are floats of ~1.7e9 seconds)
        latest = at + (self.burst - 1) * self.interval + 0.001
        # Which case to try first: the last `t` this container saw says whether launches are
        # flowing (busy) or the bucket has refilled (idle). A wrong guess costs one more call.
        stored = self.seen
        for _ in range(TRIES):
            if stored is not None and stored > latest:
                self.seen = stored
                return stored - latest
            if stored is None or stored <= at:
                # Idle: the bucket is full again; the next slot starts from now.
                refused = self._update(
                    "attribute_not_exists(t) OR t <= :now",
                    "SET t = :next, k = :kind",
                    {":now": at, ":next": at + self.interval},
                )
            else:
                # Busy: one more slot after the last, whatever it is, if it is not too far.
                refused = self._update(
                    "t > :now AND t <= :latest",
                    "SET t = t + :interval, k = :kind",
                    {":now": at, ":latest": latest, ":interval": self.interval},
                )
            if refused is None:
                self.seen = max(stored or at, at) + self.interval
                return 0.0
            stored = refused.get("t")
        return self.interval  # heavy contention: a slot is a moment away

    def _update(
        self, condition: str, update: str, values: dict[str, float]
    ) -> dict[str, Any] | None:
        """The refused item (ALL_OLD; {} when there is none), or None when applied."""
        ddb = client("dynamodb")
        try:
            ddb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": KEY}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues={
                    **{k: {"N": repr(v)} for k, v in values.items()},
                    ":kind": {"S": "G"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ddb.exceptions.ConditionalCheckFailedException as exc:
            return from_wire(exc.response.get("Item") or {})
        return None

"""Running limits per job definition: one item per limited definition in the jobs table, holding
the set of attempts that have a slot (`<job id>#<attempt>`).

A String Set makes every call idempotent: adding a holder twice or removing one that is gone
changes nothing, so a retried launch or a redelivered STOPPED never miscounts. Taking a slot is
one conditional UpdateItem (the set is smaller than the limit, or already holds this attempt);
giving it back is one unconditional UpdateItem. Definitions without a limit never touch it.
"""

from __future__ import annotations

from jobtracker.adapters.aws import client

KIND = "L"


def key(definition: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"limit#{definition}"}}


class DynamoRunningLimits:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def acquire(self, definition: str, holder: str, limit: int) -> bool:
        ddb = client("dynamodb")
        try:
            ddb.update_item(
                TableName=self.table_name,
                Key=key(definition),
                UpdateExpression="ADD h :holders SET k = :kind",
                ConditionExpression=(
                    "attribute_not_exists(h) OR size(h) < :limit OR contains(h, :holder)"
                ),
                ExpressionAttributeValues={
                    ":holders": {"SS": [holder]},
                    ":holder": {"S": holder},
                    ":limit": {"N": str(limit)},
                    ":kind": {"S": KIND},
                },
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, definition: str, *holders: str) -> None:
        if not holders:
            return
        client("dynamodb").update_item(
            TableName=self.table_name,
            Key=key(definition),
            UpdateExpression="DELETE h :holders",
            ExpressionAttributeValues={":holders": {"SS": list(holders)}},
        )

    def holders(self, definition: str) -> set[str]:
        item = (
            client("dynamodb")
            .get_item(
                TableName=self.table_name,
                Key=key(definition),
                ProjectionExpression="h",
                ConsistentRead=True,
            )
            .get("Item")
            or {}
        )
        return set(item.get("h", {}).get("SS", []))

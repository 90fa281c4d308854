"""Self-test of bench/ddb_meter.py: exact WRU/RRU on a moto table, checked against figures
computed by hand from DynamoDB's size and capacity rules. Exits non-zero on any failure.

    python bench/meter_selftest.py

Table `meter-test` (hash key `pk`) with two GSIs:
  - `by_shard`: hash `shard`, range `at`, KEYS_ONLY (a write-sharded hash key);
  - `by_status`: hash `status`, range `at`, INCLUDE ["title"].
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.offline  # noqa: E402, F401  (the bench environment, before any AWS import)
from bench.ddb_meter import (  # noqa: E402
    DdbMeter,
    MeterSnapshot,
    item_size,
    number_size,
    value_size,
)

TABLE = "meter-test"
FAILURES: list[str] = []


def check(label: str, got: Any, want: Any) -> None:
    if got != want:
        FAILURES.append(f"{label}: got {got!r}, want {want!r}")
        print(f"FAIL {label}: got {got!r}, want {want!r}")
    else:
        print(f"ok   {label}")


def s(v: str) -> dict[str, str]:
    return {"S": v}


def sizes() -> None:
    check("number 12345", number_size("12345"), 4)  # 5 digits -> 3 + 1
    check("number 0.001", number_size("0.001"), 2)  # 1 significant digit
    check("number -1200", number_size("-1200"), 2)  # trailing zeros trimmed
    check("number 123456", number_size("123456"), 4)
    check("string utf-8", value_size(s("é")), 2)
    check("bool", value_size({"BOOL": True}), 1)
    check("null", value_size({"NULL": True}), 1)
    check("binary", value_size({"B": b"\x00\x01\x02"}), 3)
    check("string set", value_size({"SS": ["ab", "c"]}), 3)
    check("number set", value_size({"NS": ["10", "100"]}), 4)
    # L [1, true] = 3 + (1 + 2) + (1 + 1) = 8; M {a: "xy", b: L} = 3 + (1 + 1 + 2) + (1 + 1 + 8)
    nested = {"M": {"a": s("xy"), "b": {"L": [{"N": "1"}, {"BOOL": True}]}}}
    check("map with list", value_size(nested), 17)
    check("item", item_size({"pk": s("job-1"), "n": {"N": "12345"}}), 7 + 5)


def create_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "shard", "status", "at")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_shard",
                "KeySchema": [
                    {"AttributeName": "shard", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by_status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]},
            },
        ],
    )


def step(
    meter: DdbMeter,
    label: str,
    action: Callable[[], Any],
    table: int,
    by_shard: int,
    by_status: int,
    expect_error: str | None = None,
) -> MeterSnapshot:
    try:
        action()
        error = None
    except Exception as e:  # the failing conditional writes
        error = type(e).__name__ if not hasattr(e, "response") else e.response["Error"]["Code"]
    check(f"{label}: error", error, expect_error)
    snap = meter.reset()
    t = snap.tables[TABLE]
    check(f"{label}: table WRU", t.wru, table)
    check(f"{label}: by_shard WRU", t.indexes["by_shard"].wru, by_shard)
    check(f"{label}: by_status WRU", t.indexes["by_status"].wru, by_status)
    return snap


def writes(meter: DdbMeter, ddb: Any) -> None:
    job1 = {
        "pk": s("job-1"),  # 2 + 5 = 7
        "shard": s("s#1"),  # 5 + 3 = 8
        "at": s("2026"),  # 2 + 4 = 6
        "title": s("hello"),  # 5 + 5 = 10
        "status": s("RUNNING"),  # 6 + 7 = 13
        "blob": s("x" * 2000),  # 4 + 2000 = 2004
    }  # 2048 bytes: exactly 2 KB
    check("job-1 size", item_size(job1), 2048)
    key1 = {"pk": s("job-1")}
    # by_shard entry: shard + at + pk = 21 + 100 -> 1; by_status: status + at + pk + title = 36 + 100
    snap = step(meter, "put job-1", lambda: ddb.put_item(TableName=TABLE, Item=job1), 2, 1, 1)
    check("put job-1: max item size", snap.tables[TABLE].max_item_size, 2048)
    check("put job-1: by_shard puts", snap.tables[TABLE].indexes["by_shard"].puts, 1)

    def update(attr: str, value: dict[str, str] | None, **kw: Any) -> Callable[[], Any]:
        """SET attr = value, or REMOVE attr when value is None (names aliased: many are
        reserved words)."""
        expr = "REMOVE #a" if value is None else "SET #a = :v"
        extra: dict[str, Any] = {"ExpressionAttributeValues": {":v": value}} if value else {}
        key = kw.pop("key", key1)
        return lambda: ddb.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression=expr,
            ExpressionAttributeNames={"#a": attr},
            **extra,
            **kw,
        )

    # title "hello" -> "hello world": 2054 bytes -> 3; only INCLUDE's projected title changed
    step(meter, "update title", update("title", s("hello world")), 3, 0, 1)
    # blob shrinks to 1 char: max(2054, 55) -> 3; nothing projected changed
    step(meter, "shrink blob", update("blob", s("y")), 3, 0, 0)
    # shard s#1 -> s#2 (55 bytes): KEYS_ONLY index key change = delete + put
    snap = step(meter, "move shard", update("shard", s("s#2")), 1, 2, 0)
    shard = snap.tables[TABLE].indexes["by_shard"]
    check("move shard: per hash key", shard.wru_by_hash_key, {"s#1": 1, "s#2": 1})
    check("move shard: puts/deletes", (shard.puts, shard.deletes), (1, 1))
    # status removed: the by_status entry disappears (sparse index) -> one delete
    step(meter, "remove status", update("status", None), 1, 0, 1)

    job2 = {"pk": s("job-2"), "blob": s("z" * 3000)}  # 7 + 3004 = 3011 -> 3, in no index
    step(meter, "put job-2", lambda: ddb.put_item(TableName=TABLE, Item=job2), 3, 0, 0)
    # a failing conditional write costs the existing item's size
    snap = step(
        meter,
        "failed condition",
        update(
            "title",
            s("x"),
            key={"pk": s("job-2")},
            ConditionExpression="attribute_not_exists(pk)",
        ),
        3,
        0,
        0,
        expect_error="ConditionalCheckFailedException",
    )
    check("failed condition: counted", snap.tables[TABLE].failed_conditions, 1)
    # a failing put on an absent... item exists but small: job-1 is 42 bytes -> 1
    step(
        meter,
        "failed put",
        lambda: ddb.put_item(
            TableName=TABLE, Item=job1, ConditionExpression="attribute_not_exists(pk)"
        ),
        1,
        0,
        0,
        expect_error="ConditionalCheckFailedException",
    )
    # delete job-1 (42 bytes): 1 + its by_shard entry (s#2) deleted
    step(meter, "delete job-1", lambda: ddb.delete_item(TableName=TABLE, Key=key1), 1, 1, 0)
    # deleting an absent item still costs 1
    step(meter, "delete absent", lambda: ddb.delete_item(TableName=TABLE, Key=key1), 1, 0, 0)

    # transaction: put job-3 (31 bytes) x2 = 2, condition check on job-2 (3 KB) x2 = 6;
    # job-3 enters both indexes (by_status without title: 23 + 100 -> 1)
    job3 = {"pk": s("job-3"), "shard": s("s#3"), "at": s("2026"), "status": s("DONE")}
    check("job-3 size", item_size(job3), 31)
    snap = step(
        meter,
        "transaction",
        lambda: ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": job3}},
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"pk": s("job-2")},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        ),
        8,
        1,
        1,
    )
    check(
        "transaction: operations",
        snap.tables[TABLE].operations,
        {"TransactWriteItems.Put": 1, "TransactWriteItems.ConditionCheck": 1},
    )
    # cancelled transaction: both items charged as failed writes, x2 (job-3: 1, job-2: 3)
    step(
        meter,
        "cancelled transaction",
        lambda: ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": s("job-3")},
                        "UpdateExpression": "SET title = :t",
                        "ExpressionAttributeValues": {":t": s("x")},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": {"pk": s("job-2")},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        ),
        8,
        0,
        0,
        expect_error="TransactionCanceledException",
    )
    # batch: put job-4 (7 + 1 + 4 = 12 bytes) and delete job-3 (and its two index entries)
    step(
        meter,
        "batch write",
        lambda: ddb.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": {"pk": s("job-4"), "n": {"N": "12345"}}}},
                    {"DeleteRequest": {"Key": {"pk": s("job-3")}}},
                ]
            }
        ),
        2,
        1,
        1,
    )


def resource_writes(meter: DdbMeter) -> None:
    import boto3

    table = boto3.resource("dynamodb").Table(TABLE)
    # plain Python values through a boto3 resource: same rules (16 + shard 8 + at 6 = 30 bytes)
    item = {"pk": "job-5", "shard": "s#5", "at": "2026", "n": 7}
    step(meter, "resource put", lambda: table.put_item(Item=item), 1, 1, 0)
    step(meter, "resource delete", lambda: table.delete_item(Key={"pk": "job-5"}), 1, 1, 0)


def reads(meter: DdbMeter, ddb: Any) -> None:
    def rru(label: str, action: Callable[[], Any], want: float) -> None:
        action()
        snap = meter.reset()
        check(f"{label}: RRU", snap.tables[TABLE].rru, want)

    key2 = {"pk": s("job-2")}  # 3011 bytes
    rru("get eventual", lambda: ddb.get_item(TableName=TABLE, Key=key2), 0.5)
    rru("get strong", lambda: ddb.get_item(TableName=TABLE, Key=key2, ConsistentRead=True), 1.0)
    rru("get absent", lambda: ddb.get_item(TableName=TABLE, Key={"pk": s("nope")}), 0.5)
    rru(
        "get projected (full size counts)",
        lambda: ddb.get_item(TableName=TABLE, Key=key2, ProjectionExpression="pk"),
        0.5,
    )
    big = {"pk": s("job-6"), "blob": s("b" * 5000)}  # 7 + 5004 = 5011 -> 2 read units
    ddb.put_item(TableName=TABLE, Item=big)
    meter.reset()
    rru(
        "get 5 KB strong",
        lambda: ddb.get_item(TableName=TABLE, Key={"pk": s("job-6")}, ConsistentRead=True),
        2.0,
    )
    rru(
        "batch get (per item)",
        lambda: ddb.batch_get_item(
            RequestItems={TABLE: {"Keys": [key2, {"pk": s("job-6")}, {"pk": s("nope")}]}}
        ),
        0.5 + 1.0 + 0.5,
    )
    # scan: job-2 3011 + job-4 12 + job-6 5011 = 8034 -> 2 units (summed, then rounded)
    rru("scan eventual", lambda: ddb.scan(TableName=TABLE), 1.0)
    rru(
        "scan with filter (read before filter)",
        lambda: ddb.scan(
            TableName=TABLE,
            FilterExpression="pk = :p",
            ExpressionAttributeValues={":p": s("job-4")},
        ),
        1.0,
    )
    rru("scan count", lambda: ddb.scan(TableName=TABLE, Select="COUNT"), 1.0)
    rru(
        "query",
        lambda: ddb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": s("job-6")},
            ConsistentRead=True,
        ),
        2.0,
    )
    # a KEYS_ONLY index reads its entries (shard 8 + at 6 + pk 7 bytes), not the 5 KB item
    job9 = {"pk": s("job-9"), "shard": s("s#9"), "at": s("2026"), "blob": s("b" * 5000)}
    ddb.put_item(TableName=TABLE, Item=job9)
    meter.reset()
    rru(
        "query KEYS_ONLY index",
        lambda: ddb.query(
            TableName=TABLE,
            IndexName="by_shard",
            KeyConditionExpression="shard = :s",
            ExpressionAttributeValues={":s": s("s#9")},
        ),
        0.5,
    )
    ddb.delete_item(TableName=TABLE, Key={"pk": s("job-9")})
    meter.reset()
    rru(
        "transact get (2x)",
        lambda: ddb.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": key2}}]),
        2.0,
    )


def calls(meter: DdbMeter, ddb: Any) -> None:
    import boto3

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    meter.reset()
    sqs.send_message(QueueUrl=url, MessageBody="x" * 70_000)  # two 64 KB chunks
    ddb.put_item(TableName=TABLE, Item={"pk": s("job-7")})
    with meter.paused():
        ddb.get_item(TableName=TABLE, Key={"pk": s("job-7")})
    snap = meter.reset()
    # the meter's own reads (before/after the put) and paused calls are not counted
    check("calls", snap.calls, {"sqs.SendMessage": 1, "dynamodb.PutItem": 1})
    check("billable", snap.billable, {"sqs.SendMessage": 2})
    check("count prefix", snap.count("sqs."), 1)


def paused_write(meter: DdbMeter, ddb: Any) -> None:
    """A write made while paused must not leave a stale image behind (reuse_images)."""
    ddb.put_item(TableName=TABLE, Item={"pk": s("job-8")})
    with meter.paused():
        ddb.put_item(TableName=TABLE, Item={"pk": s("job-8"), "pad": s("p" * 3000)})
    meter.reset()
    # the deleted item is 7 + 3003 bytes -> 3
    step(
        meter,
        "delete after paused write",
        lambda: ddb.delete_item(TableName=TABLE, Key={"pk": s("job-8")}),
        3,
        0,
        0,
    )


def main() -> int:
    import warnings

    import boto3
    import botocore.client
    from moto import mock_aws

    warnings.filterwarnings("ignore")
    sizes()
    original = botocore.client.BaseClient._make_api_call
    for reuse in (False, True):
        print(f"\n-- DdbMeter(reuse_images={reuse})")
        with mock_aws():
            ddb = boto3.client("dynamodb")
            create_table(ddb)
            try:
                with DdbMeter(reuse_images=reuse) as meter:
                    check(
                        "patched", botocore.client.BaseClient._make_api_call is not original, True
                    )
                    writes(meter, ddb)
                    resource_writes(meter)
                    reads(meter, ddb)
                    calls(meter, ddb)
                    paused_write(meter, ddb)
            except Exception:
                traceback.print_exc()
                FAILURES.append("exception")
        check("restored", botocore.client.BaseClient._make_api_call is original, True)
    print(f"\n{len(FAILURES)} failure(s)" if FAILURES else "\nall checks passed")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())

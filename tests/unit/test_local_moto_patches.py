"""Unit: the local stack's shortcuts in moto's server answer what moto itself answers."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.responses import ActionContext, ActionResult
from moto.core.serialize import BaseJSONSerializer, get_serializer_class
from moto.core.utils import get_service_model

from jobtracker_local import moto_server

ITEM = {
    "pk": {"S": "job-1"},
    "empty": {"S": ""},
    "n": {"N": "12.5"},
    "flag": {"BOOL": False},
    "none": {"NULL": True},
    "tags": {"SS": ["a", "b"]},
    "nums": {"NS": ["1", "2"]},
    "blob": {"B": "aGVsbG8="},
    "attempts": {
        "M": {
            "1": {"M": {"status": {"S": "RUNNING"}, "codes": {"L": [{"N": "1"}, {"S": "x"}]}}},
            "raw": {"M": {"b": {"BS": ["aGVsbG8="]}}},
        }
    },
    "history": {"L": [{"M": {"at": {"S": "now"}}}, {"L": []}, {"M": {}}]},
}


def answer(operation: str, result: dict[str, Any]) -> str:
    """moto's serialized answer to a DynamoDB `operation` that returned `result`."""
    service = get_service_model("dynamodb")
    context = ActionContext(
        service,
        service.operation_model(operation),
        get_serializer_class("dynamodb", "json"),
        type("Response", (), {})(),
    )
    return str(ActionResult(result).execute_result(context)[2])


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("GetItem", {"Item": ITEM}),
        ("UpdateItem", {"Attributes": ITEM, "ConsumedCapacity": {"TableName": "t"}}),
        ("Query", {"Items": [ITEM, {"pk": {"S": "job-2"}}], "Count": 2, "ScannedCount": 2}),
        ("BatchGetItem", {"Responses": {"t": [ITEM]}, "UnprocessedKeys": {}}),
    ],
)
def test_plain_items_serialize_as_moto_does(
    operation: str, result: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN moto's own answer to an operation returning items of every attribute type
    expected = answer(operation, result)
    # WHEN the shortcut serializes them
    monkeypatch.setattr(
        BaseJSONSerializer,
        "_serialize_type_structure",
        BaseJSONSerializer._serialize_type_structure,
    )
    moto_server.plain_dynamodb_items()
    # THEN the answer is the same, byte for byte
    assert answer(operation, result) == expected


def test_binary_values_are_left_to_moto() -> None:
    assert moto_server.plain_attribute({"B": "aGVsbG8="}) is None
    assert moto_server.plain_attribute({"M": {"x": {"BS": []}}}) is None
    assert moto_server.plain_attribute({"S": "x"}) == {"S": "x"}


# ---- UpdateItem's validation and the conditions' parsing: the same answers, faster ----------

TABLE = "patched"
UPDATES = [
    # the tracker's own writes (their shapes, as captured from the local stack)
    (
        "PutItem",
        {
            "Item": {"pk": {"S": "K"}, "s": {"S": "PENDING"}, "n": {"N": "1"}, "a": {"M": {}}},
            "ConditionExpression": "attribute_not_exists(pk)",
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET #1 = :2, #3.#4 = if_not_exists(#3.#4, :5) REMOVE #6",
            "ConditionExpression": "(attribute_exists(#0)) AND (#1 IN (:0, :1)) AND (#7 = :3)",
            "ExpressionAttributeNames": {
                "#0": "pk",
                "#1": "s",
                "#3": "a",
                "#4": "x",
                "#6": "gone",
                "#7": "n",
            },
            "ExpressionAttributeValues": {
                ":0": {"S": "PENDING"},
                ":1": {"S": "RUNNING"},
                ":2": {"S": "RUNNING"},
                ":3": {"N": "1"},
                ":5": {"S": "first"},
            },
            "ReturnValues": "ALL_NEW",
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET t = if_not_exists(t, :zero) + :one, k = :kind",
            "ConditionExpression": "attribute_not_exists(t) OR t <= :ten",
            "ExpressionAttributeValues": {
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":kind": {"S": "G"},
                ":ten": {"N": "10"},
            },
            "ReturnValues": "UPDATED_NEW",
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET l = list_append(if_not_exists(l, :empty), :more) ADD c :one, "
            "tags :tags",
            "ExpressionAttributeValues": {
                ":empty": {"L": []},
                ":more": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}]},
                ":one": {"N": "1"},
                ":tags": {"SS": ["x", "y"]},
            },
            "ReturnValues": "UPDATED_OLD",
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "REMOVE l[0], l[2] DELETE tags :x",
            "ConditionExpression": "size(l) BETWEEN :two AND :five AND NOT begins_with(k, :h)"
            " AND attribute_type(tags, :ss) AND c <> :zero",
            "ExpressionAttributeValues": {
                ":two": {"N": "2"},
                ":five": {"N": "5"},
                ":h": {"S": "H"},
                ":ss": {"S": "SS"},
                ":x": {"SS": ["x"]},
                ":zero": {"N": "0"},
            },
            "ReturnValues": "ALL_OLD",
        },
    ),
    # refused, each with moto's own error
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET a = :v, a = :w",
            "ExpressionAttributeValues": {":v": {"S": "1"}, ":w": {"S": "2"}},
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET #m.b = :v, #m = :w",
            "ExpressionAttributeNames": {"#m": "m"},
            "ExpressionAttributeValues": {":v": {"S": "1"}, ":w": {"M": {}}},
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET #k = :v",
            "ExpressionAttributeNames": {"#k": "pk"},
            "ExpressionAttributeValues": {":v": {"S": "other"}},
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET a = :v SET b = :v",
            "ExpressionAttributeValues": {":v": {"S": "1"}},
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET a = :v",
            "ExpressionAttributeNames": {"#u": "u"},
            "ExpressionAttributeValues": {":v": {"S": "1"}},
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET a = :v",
            "ExpressionAttributeValues": {":v": {"S": "1"}, ":unused": {"S": "2"}},
        },
    ),
    (
        "UpdateItem",
        {"UpdateExpression": "SET a = :missing", "ExpressionAttributeValues": {":v": {"S": "1"}}},
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET a = :s + :n",
            "ExpressionAttributeValues": {":s": {"S": "x"}, ":n": {"N": "1"}},
        },
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET nowhere.x.y = :v",
            "ExpressionAttributeValues": {":v": {"S": "1"}},
        },
    ),
    (
        "UpdateItem",
        {"UpdateExpression": "SET gc = :e", "ExpressionAttributeValues": {":e": {"S": ""}}},
    ),
    (
        "UpdateItem",
        {
            "UpdateExpression": "SET a = :v",
            "ConditionExpression": "s = :v",
            "ExpressionAttributeValues": {":v": {"S": "DONE"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    ("PutItem", {"Item": {"pk": {"S": "K"}}, "ConditionExpression": "attribute_not_exists(pk)"}),
]


def replay(client: Any, key: str) -> list[tuple[int, str]]:
    """Each request of UPDATES on the item `key`, twice (the second time from the caches)."""
    answers = []
    for _ in range(2):
        for target, body in UPDATES:
            request = {"TableName": TABLE, **body}
            if target == "PutItem":
                request["Item"] = {**body["Item"], "pk": {"S": key}}
            else:
                request["Key"] = {"pk": {"S": key}}
            got = client.post(
                "/",
                data=json.dumps(request),
                headers={
                    "Content-Type": "application/x-amz-json-1.0",
                    "X-Amz-Target": f"DynamoDB_20120810.{target}",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20261202/us-east-1/"
                    "dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                },
            )
            answers.append((got.status_code, got.get_data(as_text=True)))
        key += "-again"
    return answers


@pytest.fixture
def dynamodb() -> Any:
    """moto's DynamoDB application in this process, with one table (dropped afterwards)."""
    from moto.moto_server.werkzeug_app import create_backend_app

    with mock_aws():
        client = create_backend_app("dynamodb").test_client()
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "gc", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_gc",
                    "KeySchema": [{"AttributeName": "gc", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_updates_and_conditions_answer_as_moto_does(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN moto's own answers to the tracker's writes and to writes it refuses
    expected = replay(dynamodb, "moto")
    assert {status for status, _ in expected} == {200, 400}, "the cases cover both outcomes"
    # WHEN the shortcuts are in place (undone after the test), on the same items afresh
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for key in ("moto", "moto-again"):
        ddb.delete_item(TableName=TABLE, Key={"pk": {"S": key}})
    for owner, name in moto_server.VALIDATION_PATCHED:
        monkeypatch.setattr(owner, name, vars(owner).get(name, getattr(owner, name)))
    moto_server.faster_update_validation()
    moto_server.condition_parsed_once()
    # THEN every answer (item, error and message) is the same, the cached ones too
    got = replay(dynamodb, "moto")
    for n, (want, have) in enumerate(zip(expected, got, strict=True)):
        target, body = UPDATES[n % len(UPDATES)]
        assert have == want, f"request {n} ({target} {body.get('UpdateExpression')})"

"""Unit: the local stack's shortcuts in moto's server answer what moto itself answers."""

from __future__ import annotations

from typing import Any

import pytest
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

"""Unit: the HTTP edge (edge/api.py): Powertools' resolver with the API's error shape, its 404
and 405, and the checks of a raw body made before the resolver parses it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from jobtracker.edge.api import MAX_BODY_BYTES, JobsResolver, make_resolver
from jobtracker.edge.api_models import Strict
from jobtracker_local.apigw import http_event


class Echo(Strict):
    text: str


def resolver() -> JobsResolver:
    served, other = Router(), Router()

    @served.get("/jobs")
    def listing(limit: Annotated[int, Query(ge=1, le=100)] = 25) -> Any:
        return {"limit": limit, "path": served.current_event.path}

    @served.post("/echo")
    def echo(body: Annotated[Echo, Body()]) -> Any:
        return {"text": body.text}

    other.post("/jobs")(lambda: {})  # another function's route on the same path
    return make_resolver(served, other)


def answer(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    reply = resolver().resolve(event, None)
    return reply["statusCode"], reply["headers"], json.loads(reply["body"])


def test_a_query_parameter_reaches_the_route_with_its_default_or_its_value() -> None:
    # GIVEN a route with a bounded integer parameter WHEN asked without it and with it
    default = answer(http_event("GET", "/jobs"))
    given = answer(http_event("GET", "/jobs", query="limit=7"))
    # THEN the route sees the default, then the value
    assert default[2]["limit"] == 25, default
    assert given[2]["limit"] == 7, given


def test_a_query_parameter_past_its_limits_is_a_422_naming_it_and_its_problem() -> None:
    # WHEN the bounded parameter is past its maximum
    status, _, body = answer(http_event("GET", "/jobs", query="limit=101"))
    # THEN 422 names the field and says what is wrong
    assert status == 422, body
    assert body["error"]["fields"] == [
        {"field": "limit", "message": "Input should be less than or equal to 100"}
    ], body


def test_a_known_path_with_another_method_is_405_with_allow_naming_every_function() -> None:
    # WHEN DELETE /jobs is asked (GET is this function's, POST another's)
    status, headers, body = answer(http_event("DELETE", "/jobs"))
    # THEN 405, and Allow names both methods the API serves there
    assert (status, headers.get("Allow")) == (405, "GET, POST"), (headers, body)
    assert body["error"]["code"] == "method_not_allowed", body


def test_an_unknown_path_is_404_in_the_error_shape() -> None:
    status, headers, body = answer(http_event("GET", "/nope"))
    assert status == 404, body
    assert "Allow" not in headers, headers
    assert body["error"]["code"] == "not_found", body


def test_a_named_stage_prefix_is_not_part_of_the_route() -> None:
    # GIVEN a request through a stage named "prod" (not $default)
    event = http_event("GET", "/prod/jobs")
    event["requestContext"]["stage"] = "prod"
    # WHEN it is routed THEN the route answers, seeing its own path
    status, _, body = answer(event)
    assert (status, body["path"]) == (200, "/jobs"), body


def test_a_trailing_slash_reaches_the_same_route() -> None:
    status, _, body = answer(http_event("GET", "/jobs/"))
    assert status == 200, body


def test_a_body_is_limited_in_bytes_not_characters() -> None:
    # GIVEN a body under the limit in characters but over it in UTF-8 bytes (é is 2 bytes)
    text = "é" * (MAX_BODY_BYTES // 2 + 10)
    assert len(text) < MAX_BODY_BYTES < len(text.encode())
    # WHEN it is posted THEN it is refused as too large
    status, _, body = answer(http_event("POST", "/echo", {"text": text}))
    assert (status, body["error"]["code"]) == (413, "payload_too_large"), body


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("[1]", 422, "validation_error"),
        ('{"text": NaN}', 400, "malformed_json"),
        ('{"text": "\\ud800"}', 400, "malformed_json"),
        ('{"text": 1e999}', 422, "validation_error"),
        ('{"text": "a", "extra": 1}', 422, "validation_error"),
    ],
    ids=["not an object", "NaN", "lone surrogate", "past a double", "unknown field"],
)
def test_a_body_no_job_can_carry_is_refused_before_the_route(
    body: str, status: int, code: str
) -> None:
    event = http_event("POST", "/echo", body, {"content-type": "application/json"})
    answered = answer(event)
    assert (answered[0], answered[2]["error"]["code"]) == (status, code), answered

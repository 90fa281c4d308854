"""Unit: the HTTP edge's router (edge/api.py) keeps no request between calls, so one process may
answer several at once (Powertools' resolver kept the current request on its class)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jobtracker.edge.api import Param, Reply, Request, Router
from jobtracker_local.apigw import http_event


def echo_router(barrier: threading.Barrier) -> Router:
    router = Router()

    @router.route("POST", "/jobs", summary="echo", responses={200: (dict, "the body")})
    def echo(request: Request) -> Reply:
        barrier.wait(timeout=5)  # every request is in hand at once before any answers
        time.sleep(0.01)
        return Reply(200, {"body": request.body, "caller": request.caller})

    return router


def test_requests_answered_at_once_each_get_their_own_body() -> None:
    # GIVEN one router and 8 requests with different bodies, all in its hands at once
    barrier = threading.Barrier(8)
    router = echo_router(barrier)
    events = [
        http_event("POST", "/jobs", {"n": n}, caller=f"arn:aws:iam::123456789012:user/user-{n}")
        for n in range(8)
    ]

    def call(event: dict[str, Any]) -> dict[str, Any]:
        return dict(json.loads(router.resolve(event)["body"]))

    # WHEN they are answered from 8 threads
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, events))
    # THEN each answer carries its own request's body and caller
    assert [a["body"]["n"] for a in answers] == list(range(8)), answers
    assert all(a["caller"].endswith(f"user-{n}") for n, a in enumerate(answers)), answers


def test_a_query_parameter_out_of_its_limits_is_a_422_naming_it() -> None:
    # GIVEN a route with a bounded integer parameter
    router = Router()

    @router.route(
        "GET", "/jobs", summary="list", responses={}, params=(Param("limit", int, 25, 1, 100),)
    )
    def listing(request: Request) -> Reply:
        return Reply(200, {"limit": request.query["limit"]})

    # WHEN it is asked with the parameter missing, in its limits and past them
    default = router.resolve(http_event("GET", "/jobs"))
    given = router.resolve(http_event("GET", "/jobs", query="limit=7"))
    past = router.resolve(http_event("GET", "/jobs", query="limit=101"))
    # THEN the default and the given value reach the route; the value past them is refused
    assert json.loads(default["body"]) == {"limit": 25}
    assert json.loads(given["body"]) == {"limit": 7}
    assert past["statusCode"] == 422
    assert json.loads(past["body"])["error"]["fields"][0]["field"] == "limit"


def test_a_known_path_with_another_method_is_405_with_allow_and_an_unknown_one_404() -> None:
    # GIVEN a router that serves GET /jobs only (POST /jobs is another function's)
    router = Router()
    router.route("GET", "/jobs", summary="list", responses={})(lambda r: Reply(200, {}))
    # WHEN it is asked DELETE /jobs and GET /nope
    wrong = router.resolve(http_event("DELETE", "/jobs"))
    unknown = router.resolve(http_event("GET", "/nope"))
    # THEN the first is 405 naming every method the API serves there, the second 404
    assert (wrong["statusCode"], wrong["headers"].get("Allow")) == (405, "GET, POST")
    assert unknown["statusCode"] == 404


def test_a_named_stage_prefix_is_not_part_of_the_route() -> None:
    # GIVEN a route on /jobs, and a request through a stage named "prod" (not $default)
    router = Router()
    router.route("GET", "/jobs", summary="list", responses={})(lambda r: Reply(200, {"p": r.path}))
    event = http_event("GET", "/prod/jobs")
    event["requestContext"]["stage"] = "prod"
    # WHEN it is routed THEN the route answers, seeing its own path
    reply = router.resolve(event)
    assert (reply["statusCode"], json.loads(reply["body"])) == (200, {"p": "/jobs"}), reply

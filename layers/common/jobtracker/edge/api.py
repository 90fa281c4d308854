"""The HTTP edge shared by the API functions: a small router for API Gateway's HTTP API events
(payload 2.0), the checks of a request's query and body, and the one JSON error shape every
failure is answered with.

It loads neither pydantic nor Powertools' resolver: together they cost a cold start more than
everything else these functions import (bench/coldstart.py). A route declares what the OpenAPI
document says of it (jobtracker_local.openapi builds the document from these declarations and
the pydantic request models of edge/api_models.py)."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from jobtracker.core import checks
from jobtracker.core.checks import Invalid
from jobtracker.core.errors import Conflict, DomainError, InvalidInput, MalformedInput, NotFound
from jobtracker.edge.views import to_json
from jobtracker.observability import logger

JSON = "application/json"
T = TypeVar("T")

# Every path the API serves, with its methods, whichever function serves them: a known path
# asked with another method is 405 (with Allow), an unknown one 404.
ROUTES: dict[str, frozenset[str]] = {
    r"^/jobs/?$": frozenset({"GET", "POST"}),
    r"^/jobs/[^/]+/?$": frozenset({"GET"}),
    r"^/jobs/[^/]+/cancel/?$": frozenset({"POST"}),
    r"^/jobs/[^/]+/logs/?$": frozenset({"GET"}),
    r"^/schedules/?$": frozenset({"GET"}),
    r"^/stats/?$": frozenset({"GET"}),
    r"^/definitions/?$": frozenset({"GET"}),
}


class ApiError(Exception):
    """An HTTP answer other than success: only the edge speaks in status codes."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


# Each domain error's status code: the one place they meet HTTP.
STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 422,
    MalformedInput: 400,
    NotFound: 404,
    Conflict: 409,
}


# What each route may answer besides its success, for the OpenAPI document.
ERRORS: dict[int, str] = {
    400: "malformed request (JSON, a token, a header)",
    403: "not signed, or signed by a caller without access (API Gateway's IAM check)",
    404: "no such job",
    409: "the request contradicts the job's state or an earlier request",
    413: "request body too large",
    422: "invalid content: the fields and their problems are listed",
}


def from_domain(exc: DomainError) -> ApiError:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    return ApiError(status, exc.code, exc.message, exc.fields)


def invalid(exc: Invalid, where: str = "body") -> ApiError:
    """A failed check of a request's part, as the 422 that names its field."""
    name = exc.field or where
    return ApiError(
        422,
        "validation_error",
        f"invalid request: {name}: {exc.message}",
        [{"field": name, "message": exc.message}],
    )


# ---- the request ----------------------------------------------------------------------------


# Not frozen, compared or shown: each costs the cold start (see edge/views.py's View).
@dataclass(eq=False, repr=False)
class Param:
    """A query parameter: its type, default and limits, checked before the route runs."""

    name: str
    type: type[int] | type[str] = str
    default: int | str | None = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    choices: tuple[str, ...] | None = None

    def read(self, raw: str | None) -> Any:
        if raw is None:
            return self.default
        if self.type is int:
            return checks.integer(raw, self.name, ge=self.minimum, le=self.maximum)
        value = checks.text(raw, self.name, max_length=self.max_length)
        if self.choices is not None:
            return checks.one_of(value, self.name, self.choices)
        return value


@dataclass(eq=False, repr=False)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    query: dict[str, Any]  # the route's parameters, checked
    path_params: dict[str, str]
    body: Any  # the parsed JSON body; None when there is none
    caller: str  # the IAM principal API Gateway authenticated

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def body_as(parse: Callable[[Any], T], body: Any) -> T:
    """The body checked by a core model's parser; its failure is the 422 naming the field."""
    try:
        return parse(body)
    except Invalid as exc:
        raise invalid(exc) from None


IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def idempotency_key(request: Request) -> str | None:
    key = request.header("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            400,
            "validation_error",
            "Idempotency-Key: 1-128 characters of letters, digits and . _ : -",
            [{"field": "Idempotency-Key", "message": "1-128 characters of [A-Za-z0-9._:-]"}],
        )
    return key


def caller_of(event: Mapping[str, Any]) -> str:
    """The IAM principal API Gateway authenticated (SigV4); 'anonymous' only where no
    authorizer ran (the local stack without credentials)."""
    context = event.get("requestContext") or {}
    iam = (context.get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("userId") or "anonymous")


# ---- the body -------------------------------------------------------------------------------

# The largest valid submission (8 KB of overrides, 47 tags, 20 retry rules) is about 60 KB.
MAX_BODY_BYTES = 256 * 1024
# Deeper documents serve no job and break serialisers (and DynamoDB's own limit is 32).
MAX_JSON_DEPTH = 32


def _not_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _carriable(text: str) -> bool:
    """Encodable as UTF-8: JSON's \\ud800 escapes can name a lone surrogate, which no answer,
    DynamoDB item or container environment can carry."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _too_deep() -> ApiError:
    return _body_error(422, "validation_error", f"nested deeper than {MAX_JSON_DEPTH} levels")


def _check_content(value: Any) -> None:
    """Raises the error that refuses a parsed body no job can carry: nested deeper than
    MAX_JSON_DEPTH, a lone surrogate in a string or a key, a number past a double. One walk,
    without recursion."""
    stack = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str) and not _carriable(node):
            raise _body_error(400, "malformed_json", "a string is not valid Unicode")
        if isinstance(node, float) and not math.isfinite(node):
            raise _body_error(422, "validation_error", "a number is too large")
        if isinstance(node, dict):
            stack.extend((key, level) for key in node)
        if isinstance(node, dict | list):
            level += 1
            if level > MAX_JSON_DEPTH:
                raise _too_deep()
            stack.extend(
                (child, level) for child in (node.values() if isinstance(node, dict) else node)
            )


def _body_error(status: int, code: str, problem: str) -> ApiError:
    return ApiError(status, code, f"body: {problem}", [{"field": "body", "message": problem}])


def read_body(event: Mapping[str, Any], headers: Mapping[str, str]) -> Any:
    """The request's JSON body (None when it has none), or the error that refuses it: a body
    that is not JSON by its content type, too large, not UTF-8, malformed, too deep, or not an
    object."""
    body = event.get("body")
    if not body:
        return None
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be {JSON}, got {content_type or 'none'!r}",
        )
    if len(body) > MAX_BODY_BYTES:
        raise _body_error(413, "payload_too_large", f"at most {MAX_BODY_BYTES} bytes")
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, a non-ASCII body
            raise _body_error(400, "malformed_json", "not UTF-8 JSON") from None
    try:
        parsed = json.loads(body, parse_constant=_not_json_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None
    _check_content(parsed)
    if not isinstance(parsed, dict):
        raise _body_error(422, "validation_error", "must be a JSON object")
    return parsed


# ---- answers --------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Reply:
    status: int
    body: Any  # a view (edge/views.py) or a JSON-ready dict
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> dict[str, Any]:
        """As API Gateway's HTTP API takes a function's answer (payload 2.0)."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": JSON, **self.headers},
            "body": to_json(self.body),
            "isBase64Encoded": False,
        }


def error_reply(error: ApiError) -> Reply:
    headers = (
        {"Allow": error.fields[0]["allow"]}
        if error.code == "method_not_allowed" and error.fields
        else {}
    )
    return Reply(error.status, error.body(), headers)


# ---- routes ---------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class Route:
    """One method on one path, and what the OpenAPI document says of it."""

    method: str
    path: str  # "/jobs/{job_id}"
    handler: Callable[[Request], Reply]
    summary: str
    responses: dict[int, tuple[type, str]]  # success status -> (view class, description)
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    body: str | None = None  # the request body's model in edge/api_models.py
    body_required: bool = False
    description: str | None = None

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{regex}/?$")


class Router:
    """Routes an HTTP API event to its route; every failure becomes the one error shape."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self, method: str, path: str, **doc: Any
    ) -> Callable[[Callable[[Request], Reply]], Callable[[Request], Reply]]:
        def register(handler: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
            self.routes.append(Route(method, path, handler, **doc))
            return handler

        return register

    def resolve(self, event: Mapping[str, Any]) -> dict[str, Any]:
        try:
            reply = self._dispatch(event)
        except ApiError as exc:
            reply = error_reply(exc)
        except DomainError as exc:
            reply = error_reply(from_domain(exc))
        except Exception:
            logger.exception("unhandled error")
            reply = error_reply(ApiError(500, "internal_error", "internal error; it was logged"))
        return reply.response()

    def _dispatch(self, event: Mapping[str, Any]) -> Reply:
        http = (event.get("requestContext") or {}).get("http") or {}
        method = str(http.get("method", "")).upper()
        path = _route_path(event)
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None or route.method != method:
                continue
            body = read_body(event, headers) if method in ("POST", "PUT", "PATCH") else None
            query = event.get("queryStringParameters") or {}
            try:
                params = {p.name: p.read(query.get(p.name)) for p in route.params}
            except Invalid as exc:
                raise invalid(exc, "query") from None
            request = Request(
                method, path, headers, params, found.groupdict(), body, caller_of(event)
            )
            return route.handler(request)
        for pattern, methods in ROUTES.items():
            if re.match(pattern, path) and method not in methods:
                allow = ", ".join(sorted(methods))
                raise ApiError(
                    405,
                    "method_not_allowed",
                    f"{method} is not allowed on {path}",
                    [{"field": "method", "message": f"allowed: {allow}", "allow": allow}],
                )
        raise ApiError(404, "not_found", f"no route {method} {path}")


def _route_path(event: Mapping[str, Any]) -> str:
    """The path within the API: a named stage's prefix is not part of the route."""
    path = str(event.get("rawPath") or "/")
    stage = (event.get("requestContext") or {}).get("stage")
    if stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    return path

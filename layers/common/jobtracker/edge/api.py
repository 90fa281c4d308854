"""The HTTP edge shared by the API functions: Powertools' `APIGatewayHttpResolver` with
validation (the request models of edge/api_models.py), the checks of a raw body it does not
make, and the one JSON error shape every failure is answered with (through its exception
handlers). Only this module and the route modules speak in status codes."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter, Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel

from jobtracker.core.errors import Conflict, DomainError, InvalidInput, MalformedInput, NotFound
from jobtracker.edge.api_models import ErrorView, GatewayError, field_errors
from jobtracker.observability import logger

JSON = "application/json"


class ApiError(Exception):
    """An HTTP answer other than success: only the edge speaks in status codes."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}

    def response(self) -> Response[Any]:
        return Response(
            status_code=self.status,
            content_type=JSON,
            body=json.dumps(self.body(), separators=(",", ":"), ensure_ascii=False),
            headers=self.headers,
        )


# Each domain error's status code: the one place they meet HTTP.
STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 422,
    MalformedInput: 400,
    NotFound: 404,
    Conflict: 409,
}

# What a route may answer besides its success, for the OpenAPI document. Every route may answer
# 403 (API Gateway's IAM check, in its own shape) and 500 (a fault of ours, in ours).
ERRORS: dict[int, str] = {
    400: "malformed request (JSON, a token, a header)",
    404: "no such job (or schedule, on /schedules routes)",
    409: "the request contradicts the job's (or schedule's) state or an earlier request",
    413: "request body too large",
    415: "the body is not application/json",
    422: "invalid content: the fields and their problems are listed",
    500: "a fault of the service (it was logged)",
}
GATEWAY_403 = "not signed, or signed by a caller without access (API Gateway's IAM check)"
# Refused before any route runs: a body's content type, size and JSON (POST routes).
BODY_ERRORS = (400, 413, 415, 422)


def responses(ok: Mapping[int, tuple[type[BaseModel], str]], *errors: int) -> dict[int, Any]:
    """A route's documented answers: its successes with their models, then its errors."""
    documented: dict[int, Any] = {
        status: {"description": text, "content": {JSON: {"model": model}}}
        for status, (model, text) in ok.items()
    }
    for status in sorted({*errors, 500}):
        documented[status] = {
            "description": ERRORS[status],
            "content": {JSON: {"model": ErrorView}},
        }
    documented[403] = {"description": GATEWAY_403, "content": {JSON: {"model": GatewayError}}}
    return documented


def from_domain(exc: DomainError) -> ApiError:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    return ApiError(status, exc.code, exc.message, exc.fields)


def answer(status: int, body: BaseModel) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=body.model_dump_json())


def _validation_error(exc: RequestValidationError) -> ApiError:
    fields = field_errors(list(exc.errors()))
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return ApiError(422, "validation_error", f"invalid request: {summary}", fields)


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


def _body_error(status: int, code: str, problem: str) -> ApiError:
    return ApiError(status, code, f"body: {problem}", [{"field": "body", "message": problem}])


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


def check_body(event: Mapping[str, Any]) -> None:
    """Raises the error that refuses a request's body before Powertools parses it: a body that
    is not JSON by its content type (a form would be parsed as a form), too large (in bytes, as
    it arrived), not UTF-8, malformed, too deep, carrying what no job can, or not an object."""
    body = event.get("body")
    if not body:
        return
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be {JSON}, got {content_type or 'none'!r}",
        )
    encoded = event.get("isBase64Encoded")
    # base64 carries 3 bytes in 4 characters; a text body's bytes are its UTF-8 encoding.
    size = len(body) * 3 // 4 if encoded else len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise _body_error(413, "payload_too_large", f"at most {MAX_BODY_BYTES} bytes")
    if encoded:
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


# ---- the resolver ---------------------------------------------------------------------------


def routes_of(router: Router) -> set[tuple[str, str]]:
    """(METHOD, "/path/{param}") of each route a router serves, as API Gateway names them."""
    return {
        (method.upper(), re.sub(r"<(\w+)>", r"{\1}", key[0]))
        for key in router._routes  # Powertools keys each route by (rule, methods, ...)
        for method in key[1]
    }


def route_methods(routers: Iterable[Router]) -> dict[str, frozenset[str]]:
    """Each path the API serves (as a regex) with its methods, from the routers themselves."""
    methods: dict[str, set[str]] = {}
    for router in routers:
        for method, path in routes_of(router):
            methods.setdefault("^" + re.sub(r"{\w+}", "[^/]+", path) + "$", set()).add(method)
    return {path: frozenset(found) for path, found in methods.items()}


class JobsResolver(APIGatewayHttpResolver):
    """The resolver, with the checks it makes too late (a body's bytes and JSON) made first."""

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        try:
            check_body(event)
        except ApiError as exc:
            return {
                "statusCode": exc.status,
                "headers": {"Content-Type": JSON},
                "body": json.dumps(exc.body(), separators=(",", ":"), ensure_ascii=False),
                "isBase64Encoded": False,
            }
        return super().resolve(_without_trailing_slash(event), context)


def _without_trailing_slash(event: Mapping[str, Any]) -> Mapping[str, Any]:
    path = event.get("rawPath") or "/"
    if len(path) > 1 and path.endswith("/"):
        return {**event, "rawPath": path.rstrip("/") or "/"}
    return event


def make_resolver(serves: Router, *others: Router) -> JobsResolver:
    """A resolver serving `serves`; a path any of `others` serves, asked with a method none
    serves, is 405 with Allow (an unknown path 404), as one API answers."""
    app = JobsResolver(enable_validation=True)
    app.include_router(serves)
    known = route_methods((serves, *others))

    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response[Any]:
        return exc.response()

    @app.exception_handler(DomainError)
    def _domain_error(exc: DomainError) -> Response[Any]:
        return from_domain(exc).response()

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        return _validation_error(exc).response()

    @app.exception_handler(NotFoundError)
    def _not_found(exc: NotFoundError) -> Response[Any]:
        path = app.current_event.path.rstrip("/") or "/"
        method = app.current_event.http_method.upper()
        for pattern, methods in known.items():
            if re.match(pattern, path) and method not in methods:
                allow = ", ".join(sorted(methods))
                return ApiError(
                    405,
                    "method_not_allowed",
                    f"{method} is not allowed on {path}",
                    [{"field": "method", "message": f"allowed: {allow}"}],
                    headers={"Allow": allow},
                ).response()
        return ApiError(404, "not_found", f"no route {method} {path}").response()

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return ApiError(500, "internal_error", "internal error; it was logged").response()

    return app


def caller_of(app: BaseRouter) -> str:
    """The IAM principal API Gateway authenticated (SigV4); 'anonymous' only where no
    authorizer ran (the local stack without credentials)."""
    context = app.current_event.raw_event.get("requestContext") or {}
    iam = (context.get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("userId") or "anonymous")


IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def idempotency_key(app: BaseRouter) -> str | None:
    headers = app.current_event.headers or {}
    key = next((str(v) for k, v in headers.items() if k.lower() == "idempotency-key"), None)
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

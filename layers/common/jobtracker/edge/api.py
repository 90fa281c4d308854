"""The HTTP edge shared by the API functions: a Powertools resolver with validation, and the
one JSON error shape every failure is answered with."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel

from jobtracker.core.errors import Conflict, DomainError, InvalidInput, MalformedInput, NotFound
from jobtracker.observability import logger

JSON = "application/json"

# Every route the API serves, with its methods: unknown paths are 404, known paths with
# another method are 405.
ROUTES: dict[str, frozenset[str]] = {
    r"^/jobs/?$": frozenset({"GET", "POST"}),
    r"^/jobs/[^/]+/?$": frozenset({"GET"}),
    r"^/jobs/[^/]+/cancel/?$": frozenset({"POST"}),
    r"^/jobs/[^/]+/logs/?$": frozenset({"GET"}),
    r"^/schedules/?$": frozenset({"GET"}),
    r"^/stats/?$": frozenset({"GET"}),
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


def responses(ok: dict[int, tuple[type[BaseModel], str]], *errors: int) -> dict[int, Any]:
    """A route's documented answers: its successes with their models, and its errors."""
    from jobtracker.edge.api_models import ErrorView

    documented: dict[int, Any] = {
        status: {"description": text, "content": {JSON: {"model": model}}}
        for status, (model, text) in ok.items()
    }
    for status in (*errors, 403):
        documented[status] = {
            "description": ERRORS[status],
            "content": {JSON: {"model": ErrorView}},
        }
    return documented


def from_domain(exc: DomainError) -> ApiError:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    return ApiError(status, exc.code, exc.message, exc.fields)


def json_response(status: int, body: BaseModel | dict[str, Any]) -> Response[Any]:
    payload = body.model_dump_json() if isinstance(body, BaseModel) else body
    return Response(status_code=status, content_type=JSON, body=payload)


def error_response(error: ApiError) -> Response[Any]:
    headers = (
        {"Allow": error.fields[0]["allow"]}
        if error.code == "method_not_allowed" and error.fields
        else None
    )
    return Response(status_code=error.status, content_type=JSON, body=error.body(), headers=headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation_error(exc: RequestValidationError) -> ApiError:
    errors = list(exc.errors())
    kinds = {e.get("type") for e in errors}
    if "json_invalid" in kinds:
        detail = next(
            (e.get("ctx", {}).get("error") for e in errors if e.get("type") == "json_invalid"), ""
        )
        return ApiError(
            400, "malformed_json", f"request body is not valid JSON: {detail}".rstrip(": ")
        )
    fields = []
    for e in errors:
        loc = e.get("loc", ())
        name = _field_name(loc)
        message = str(e.get("msg", "invalid"))
        if e.get("type") == "missing":
            message = "field required"
        elif e.get("type") == "extra_forbidden":
            message = "unknown field"
        fields.append({"field": name, "message": message})
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return ApiError(422, "validation_error", f"invalid request: {summary}", fields)


# The largest valid submission (8 KB of overrides, 47 tags, 20 retry rules) is about 60 KB.
MAX_BODY_BYTES = 256 * 1024
# Deeper documents serve no job and break serialisers (and DynamoDB's own limit is 32).
MAX_JSON_DEPTH = 32


def _depth(value: Any) -> int:
    """How deeply lists and objects nest (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            level += 1
            deepest = max(deepest, level)
            if deepest > MAX_JSON_DEPTH:
                return deepest
            stack.extend(
                (child, level) for child in (node.values() if isinstance(node, dict) else node)
            )
    return deepest


def _precheck(event: Mapping[str, Any]) -> ApiError | None:
    """Checks Powertools' validation runs too late for: the content type of a body (a form
    body would otherwise be parsed as a form), and a JSON body that is not an object."""
    method = str((event.get("requestContext") or {}).get("http", {}).get("method", "")).upper()
    body = event.get("body")
    if method not in ("POST", "PUT", "PATCH") or not body:
        return None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        return ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be {JSON}, got {content_type or 'none'!r}",
        )
    if len(body) > MAX_BODY_BYTES:
        return _body_error(413, "payload_too_large", f"at most {MAX_BODY_BYTES} bytes")
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return _body_error(400, "malformed_json", "not UTF-8 JSON")
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None  # Powertools answers malformed JSON (400)
    if _depth(parsed) > MAX_JSON_DEPTH:
        return _body_error(422, "validation_error", f"nested deeper than {MAX_JSON_DEPTH} levels")
    if not isinstance(parsed, dict):
        return _body_error(422, "validation_error", "must be a JSON object")
    return None


def _body_error(status: int, code: str, problem: str) -> ApiError:
    return ApiError(status, code, f"body: {problem}", [{"field": "body", "message": problem}])


class JobsResolver(APIGatewayHttpResolver):
    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        problem = _precheck(event)
        if problem is not None:
            return {
                "statusCode": problem.status,
                "headers": {"Content-Type": JSON},
                "body": json.dumps(problem.body()),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def make_resolver() -> JobsResolver:
    app = JobsResolver(enable_validation=True)

    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response[Any]:
        return error_response(exc)

    @app.exception_handler(DomainError)
    def _domain_error(exc: DomainError) -> Response[Any]:
        return error_response(from_domain(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        return error_response(_validation_error(exc))

    @app.not_found
    def _not_found(exc: Exception) -> Response[Any]:
        path = app.current_event.path
        method = app.current_event.http_method
        for pattern, methods in ROUTES.items():
            if re.match(pattern, path) and method not in methods:
                allow = ", ".join(sorted(methods))
                return error_response(
                    ApiError(
                        405,
                        "method_not_allowed",
                        f"{method} is not allowed on {path}",
                        [{"field": "method", "message": f"allowed: {allow}", "allow": allow}],
                    )
                )
        return error_response(ApiError(404, "not_found", f"no route {method} {path}"))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        logger.exception("unhandled error")
        return error_response(ApiError(500, "internal_error", "internal error; it was logged"))

    return app


def caller_of(app: APIGatewayHttpResolver) -> str:
    """The IAM principal API Gateway authenticated (SigV4); 'anonymous' only where no
    authorizer ran (the local stack without credentials)."""
    context = app.current_event.raw_event.get("requestContext") or {}
    iam = (context.get("authorizer") or {}).get("iam") or {}
    return str(iam.get("userArn") or iam.get("userId") or "anonymous")


def header(app: APIGatewayHttpResolver, name: str) -> str | None:
    headers = app.current_event.headers or {}
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return str(value)
    return None


IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def idempotency_key(app: APIGatewayHttpResolver) -> str | None:
    key = header(app, "Idempotency-Key")
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

"""Build API Gateway HTTP API (payload 2.0) events, as API Gateway hands them to a Lambda
with IAM authorization. Used by the local HTTP front and by the tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

LOCAL_CALLER = "arn:aws:iam::000000000000:user/local-developer"


def iam_identity(user_arn: str, access_key: str | None = None) -> dict[str, Any]:
    """`requestContext.authorizer.iam` as API Gateway fills it for a SigV4-signed call (the
    access key only when one signed: the local bearer token stands for the same user)."""
    return {
        "accessKey": access_key,
        "accountId": user_arn.split(":")[4],
        "callerId": "AIDALOCAL",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": user_arn,
        "userId": "AIDALOCAL",
    }


def http_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: str | dict[str, str] | None = None,
    route_key: str | None = None,
    caller: str | None = LOCAL_CALLER,
    access_key: str | None = None,
) -> dict[str, Any]:
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    raw_body: str | None
    is_b64 = False
    if body is None:
        raw_body = None
    elif isinstance(body, bytes):
        try:
            raw_body = body.decode("utf-8")
        except UnicodeDecodeError:
            raw_body = base64.b64encode(body).decode()
            is_b64 = True
    elif isinstance(body, str):
        raw_body = body
    else:
        raw_body = json.dumps(body)
        hdrs.setdefault("content-type", "application/json")
    if isinstance(query, dict):
        params = query
        raw_query = "&".join(f"{k}={v}" for k, v in query.items())
    else:
        raw_query = query or ""
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
    now = time.time()
    authorizer = {"iam": iam_identity(caller, access_key)} if caller else None
    context: dict[str, Any] = {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": "localhost",
        "domainPrefix": "localhost",
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": hdrs.get("user-agent", "local"),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route_key or f"{method.upper()} {path}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if authorizer:
        context["authorizer"] = authorizer
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": context["routeKey"],
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": context,
        "isBase64Encoded": is_b64,
    }
    if params:
        event["queryStringParameters"] = params
    if raw_body is not None:
        event["body"] = raw_body
    return event

"""Unit: the local SigV4 verifier accepts what botocore signs and refuses what AWS would refuse."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from jobtracker_local.sigv4 import Accepted, Credentials, Reason, Rejected, Request, verify

REGION = "us-east-1"
SERVICE = "execute-api"
KEYS = Credentials.generate()


def signed(
    url: str,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = KEYS.secret_access_key,
    service: str = SERVICE,
    access_key: str = KEYS.access_key_id,
) -> Request:
    """The request as the server receives it, signed by botocore as a client would sign it."""
    aws = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(BotoCredentials(access_key, secret), service, REGION).add_auth(aws)
    parts = urlsplit(url)
    on_the_wire = [("Host", parts.netloc), *aws.headers.items()]  # the HTTP client adds Host
    return Request(method, parts.path, parts.query, on_the_wire, body)


def check(request: Request, now: datetime | None = None) -> Accepted | Rejected:
    return verify(request, KEYS.secret_for, SERVICE, REGION, now=now)


def header_replaced(request: Request, name: str, value: str) -> Request:
    kept = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
    return replace(request, headers=[*kept, (name, value)])


def test_generated_credentials_look_like_iam_keys() -> None:
    # GIVEN / WHEN fresh credentials; THEN they have IAM's shape and differ every time
    creds = Credentials.generate()
    assert creds.access_key_id.startswith("AKIA") and len(creds.access_key_id) == 20
    assert creds.access_key_id[4:].isalpha() and creds.access_key_id[4:].isupper()
    assert len(creds.secret_access_key) == 40
    assert Credentials.generate() != creds, "random, not fixed"


@pytest.mark.parametrize(
    ("url", "method", "body"),
    [
        ("http://127.0.0.1:8080/jobs?status=FAILED&limit=10&definition=a%20b", "GET", b""),
        ("http://127.0.0.1:8080/jobs", "GET", b""),
        ("http://127.0.0.1:8080/jobs", "POST", b'{"definition": "demo", "parameters": {}}'),
        ("http://127.0.0.1:8080/jobs/job%20one%2Fx/cancel", "POST", b"{}"),
    ],
    ids=["query string", "empty body", "JSON body", "path needing URI-encoding"],
)
def test_a_request_botocore_signed_with_the_right_secret_is_accepted(
    url: str, method: str, body: bytes
) -> None:
    # GIVEN a request signed by botocore with the stack's credentials
    request = signed(url, method, body, {"Content-Type": "application/json"})
    # WHEN it is verified
    result = check(request)
    # THEN it is accepted, and the caller is the signing key
    assert result == Accepted(KEYS.access_key_id), f"refused: {result}"


def test_a_wrong_secret_is_a_signature_mismatch() -> None:
    # GIVEN a request signed with the right key id but another secret
    request = signed("http://h/jobs", secret="x" * 40)
    # WHEN it is verified; THEN the signature does not match
    result = check(request)
    assert isinstance(result, Rejected) and result.reason is Reason.MISMATCH, result
    assert "signature we calculated does not match" in result.message


def test_a_tampered_body_is_a_signature_mismatch() -> None:
    # GIVEN a signed POST whose body is changed after signing
    request = replace(signed("http://h/jobs", "POST", b'{"a": 1}'), body=b'{"a": 2}')
    # WHEN it is verified; THEN it is refused
    result = check(request)
    assert isinstance(result, Rejected) and result.reason is Reason.MISMATCH, result


def test_a_tampered_signed_header_is_a_signature_mismatch() -> None:
    # GIVEN a signed request whose signed Content-Type is changed after signing
    request = signed("http://h/jobs", "POST", b"{}", {"Content-Type": "application/json"})
    tampered = header_replaced(request, "Content-Type", "text/plain")
    # WHEN it is verified; THEN it is refused
    result = check(tampered)
    assert isinstance(result, Rejected) and result.reason is Reason.MISMATCH, result


def test_a_tampered_query_is_a_signature_mismatch() -> None:
    # GIVEN a signed GET whose query is changed after signing
    request = replace(signed("http://h/jobs?limit=10"), query="limit=1000")
    # WHEN it is verified; THEN it is refused
    result = check(request)
    assert isinstance(result, Rejected) and result.reason is Reason.MISMATCH, result


def test_a_signature_twenty_minutes_old_has_expired() -> None:
    # GIVEN a request signed now, verified 20 minutes later
    request = signed("http://h/jobs")
    later = datetime.now(UTC) + timedelta(minutes=20)
    # WHEN it is verified; THEN it is refused as expired, in AWS's words
    result = check(request, now=later)
    assert isinstance(result, Rejected) and result.reason is Reason.EXPIRED, result
    assert result.message.startswith("Signature expired: "), result.message


def test_a_signature_ten_minutes_old_is_still_accepted() -> None:
    # GIVEN a request signed now, verified 10 minutes later (inside AWS's 15-minute window)
    request = signed("http://h/jobs")
    later = datetime.now(UTC) + timedelta(minutes=10)
    # WHEN / THEN it is accepted
    assert check(request, now=later) == Accepted(KEYS.access_key_id)


def test_an_unknown_access_key_is_refused_as_an_invalid_token() -> None:
    # GIVEN a request signed with a key the stack never issued
    request = signed("http://h/jobs", access_key="AKIAUNKNOWNUNKNOWNXX")
    # WHEN it is verified; THEN it is refused as ECS and API Gateway refuse unknown keys
    result = check(request)
    assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_KEY, result
    assert result.message == "The security token included in the request is invalid."


def test_a_signature_for_another_service_is_refused() -> None:
    # GIVEN a request signed for ECS, sent to the API
    request = signed("http://h/jobs", service="ecs")
    # WHEN it is verified; THEN the credential scope is wrong
    result = check(request)
    assert isinstance(result, Rejected) and result.reason is Reason.WRONG_SCOPE, result
    assert "'execute-api'" in result.message


def test_a_request_without_authorization_is_missing_its_token() -> None:
    # GIVEN an unsigned request; WHEN it is verified; THEN nothing authenticates it
    result = check(Request("GET", "/jobs", "", [("Host", "h")], b""))
    assert isinstance(result, Rejected) and result.reason is Reason.MISSING, result


def test_a_signature_that_leaves_out_the_date_header_is_incomplete() -> None:
    # GIVEN a correct-looking Authorization whose SignedHeaders omit x-amz-date
    request = signed("http://h/jobs")
    authorization = dict(request.headers)["Authorization"]
    narrowed = authorization.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=host")
    # WHEN it is verified; THEN it is refused before any signature is computed
    result = check(header_replaced(request, "Authorization", narrowed))
    assert isinstance(result, Rejected) and result.reason is Reason.INCOMPLETE, result
    assert "'x-amz-date'" in result.message

"""Unit: the local API front authorizes as API Gateway's IAM authorization does (SigV4 for
execute-api by the stack's key), keeps the bearer token for curl, and tells the function who
signed."""

from __future__ import annotations

from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from jobtracker_local import sigv4
from jobtracker_local.apigw import LOCAL_CALLER, http_event
from jobtracker_local.stack import REGION, LocalStack


def signed_get(stack: LocalStack, service: str = "execute-api") -> sigv4.Request:
    creds = stack.credentials
    aws = AWSRequest(method="GET", url="http://127.0.0.1:8080/jobs?limit=5", data=b"")
    keys = BotoCredentials(creds.access_key_id, creds.secret_access_key)
    SigV4Auth(keys, service, REGION).add_auth(aws)
    headers = [("Host", "127.0.0.1:8080"), *aws.headers.items()]
    return sigv4.Request("GET", "/jobs", "limit=5", headers, b"")


def test_a_request_signed_with_the_stacks_keys_is_authorized_as_its_access_key(
    tmp_path: Path,
) -> None:
    # GIVEN a stack (not started) and a GET signed with its keys for execute-api
    stack = LocalStack(tmp_path)
    # WHEN the front authorizes it; THEN the caller is the stack's access key
    assert stack.authorize(signed_get(stack)) == sigv4.Accepted(stack.credentials.access_key_id)


def test_a_request_signed_for_another_service_is_refused(tmp_path: Path) -> None:
    # GIVEN a GET signed with the stack's keys, but for ECS
    stack = LocalStack(tmp_path)
    # WHEN the front authorizes it; THEN it is refused (the scope names the wrong service)
    result = stack.authorize(signed_get(stack, service="ecs"))
    assert isinstance(result, sigv4.Rejected), result
    assert result.reason is sigv4.Reason.WRONG_SCOPE, result


def test_the_bearer_token_still_authorizes_the_local_user(tmp_path: Path) -> None:
    # GIVEN a curl-style request with the stack's bearer token
    stack = LocalStack(tmp_path)
    request = sigv4.Request("GET", "/jobs", "", [("authorization", f"Bearer {stack.token}")], b"")
    # WHEN / THEN it is let through as the local user (no access key)
    assert stack.authorize(request) is None


def test_a_wrong_bearer_token_is_forbidden(tmp_path: Path) -> None:
    # GIVEN a request with some other bearer token; WHEN / THEN it is refused
    stack = LocalStack(tmp_path)
    request = sigv4.Request("GET", "/jobs", "", [("Authorization", "Bearer guess")], b"")
    result = stack.authorize(request)
    assert isinstance(result, sigv4.Rejected) and result.message == "Forbidden", result


def test_the_event_names_the_signing_access_key_as_api_gateway_does() -> None:
    # GIVEN / WHEN an event for a call signed by a key
    event = http_event("GET", "/jobs", caller=LOCAL_CALLER, access_key="AKIAEXAMPLEEXAMPLEXX")
    # THEN requestContext.authorizer.iam carries the key, the account and the user
    iam = event["requestContext"]["authorizer"]["iam"]
    assert iam["accessKey"] == "AKIAEXAMPLEEXAMPLEXX", iam
    assert iam["userArn"] == LOCAL_CALLER and iam["accountId"] == "000000000000", iam

"""Unit: the local ECS service behaves as ECS does: a task it cannot start ends STOPPED with a
reason, RunTask is throttled past Fargate's limits, and only SigV4-signed calls by the stack's
credentials are answered."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from jobtracker_local.ecs import LocalEcs, serve
from jobtracker_local.sigv4 import Credentials


def local_ecs(tmp_path: Path, emit: Any = None, **limits: float) -> LocalEcs:
    """A local ECS with cluster `c` and task definition `worker` (runs `python -c pass`)."""
    ecs = LocalEcs(emit or (lambda e: None), "us-east-1", tmp_path, 0.01, **limits)
    ecs.create_cluster("c")
    ecs.register_task_definition("worker", "worker", ["python", "-c", "pass"], {}, 2)
    return ecs


def test_a_task_the_os_cannot_start_stops_with_a_reason(tmp_path: Path) -> None:
    # GIVEN a local ECS and a task whose command carries a NUL byte (no OS can exec it)
    events: list[dict[str, Any]] = []
    ecs = local_ecs(tmp_path, events.append)
    try:
        # WHEN it is run
        ecs.run_task(
            {
                "cluster": "c",
                "taskDefinition": "worker",
                "overrides": {"containerOverrides": [{"name": "worker", "command": ["a\x00b"]}]},
            }
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            e["detail"]["lastStatus"] == "STOPPED" for e in events
        ):
            time.sleep(0.02)
    finally:
        ecs.shutdown()
    # THEN it ends STOPPED with the stop code and reason ECS gives, so retries and deadlines apply
    stopped = [e["detail"] for e in events if e["detail"]["lastStatus"] == "STOPPED"]
    assert stopped, [e["detail"]["lastStatus"] for e in events]
    assert stopped[-1]["stopCode"] == "TaskFailedToStart"
    assert stopped[-1]["stoppedReason"].startswith("CannotStartContainerError")


def test_token_bucket_allows_a_burst_then_its_rate() -> None:
    from jobtracker_local.ecs import TokenBucket

    now = [0.0]
    bucket = TokenBucket(rate=20, burst=100, clock=lambda: now[0])
    assert sum(bucket.take() for _ in range(150)) == 100, "the burst"
    now[0] += 0.5  # half a second refills 10
    assert sum(bucket.take() for _ in range(50)) == 10, "the sustained rate"


def run_body(n: int, token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cluster": "c",
        "taskDefinition": "worker",
        "overrides": {"containerOverrides": [{"name": "worker", "environment": []}]},
        "startedBy": f"job-{n}",
    }
    if token:
        body["clientToken"] = token
    return body


def test_local_ecs_throttles_run_task_past_its_limits_as_ecs_does(tmp_path: Path) -> None:
    from jobtracker_local.ecs import EcsError

    # GIVEN a local ECS allowing bursts of 3 (and almost no refill)
    ecs = local_ecs(tmp_path, launch_rate=0.001, launch_burst=3)
    try:
        # WHEN four tasks are asked for at once
        for n in range(3):
            assert ecs.run_task(run_body(n))["tasks"]
        # THEN the fourth call is refused the way ECS refuses it
        with pytest.raises(EcsError) as refused:
            ecs.run_task(run_body(3))
        assert refused.value.code == "ThrottlingException"
        assert ecs.throttled == 1
    finally:
        ecs.shutdown()


def test_a_replayed_client_token_costs_a_call_but_launches_nothing(tmp_path: Path) -> None:
    ecs = local_ecs(tmp_path, launch_rate=0.001, launch_burst=2)
    try:
        first = ecs.run_task(run_body(1, token="t1"))["tasks"][0]["taskArn"]
        again = ecs.run_task(run_body(1, token="t1"))["tasks"][0]["taskArn"]
        assert again == first, "the same task, as the clientToken promises"
        assert ecs.launch_bucket.tokens >= 1 > ecs.call_bucket.tokens, "one launch, two calls"
    finally:
        ecs.shutdown()


def _wait_until_stopped(ecs: LocalEcs, arn: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and ecs.tasks[arn].last_status != "STOPPED":
        time.sleep(0.02)
    assert ecs.tasks[arn].last_status == "STOPPED", "the task never stopped"


def test_a_stopped_task_is_forgotten_after_the_retention_as_ecs_does(tmp_path: Path) -> None:
    # GIVEN a local ECS that keeps stopped tasks for 0.2 s (ECS: an hour), and a task that stopped
    ecs = local_ecs(tmp_path, stopped_retention=0.2)
    try:
        first = ecs.run_task(run_body(1, token="t1"))["tasks"][0]["taskArn"]
        _wait_until_stopped(ecs, first)
        # WHEN the retention has passed and another task is run
        time.sleep(0.3)
        ecs.run_task(run_body(2))
        # THEN the stopped task and its client token are gone; the new one is kept
        assert first not in ecs.tasks, "a task stopped past the retention is forgotten"
        assert ("t1" not in ecs.run_task_calls) and not any(k[1] == "t1" for k in ecs.tokens)
        assert len(ecs.tasks) == 1, "the new task is kept"
    finally:
        ecs.shutdown()


def test_a_stopped_task_is_kept_within_the_retention(tmp_path: Path) -> None:
    # GIVEN a local ECS with ECS's hour of retention and a task that stopped
    ecs = local_ecs(tmp_path)
    try:
        first = ecs.run_task(run_body(1))["tasks"][0]["taskArn"]
        _wait_until_stopped(ecs, first)
        # WHEN another task is run THEN the stopped one is still described
        ecs.run_task(run_body(2))
        assert first in ecs.tasks, "a task stopped a moment ago is still there"
    finally:
        ecs.shutdown()


def test_stopped_tasks_keep_no_file_descriptor_open(tmp_path: Path) -> None:
    import os

    # GIVEN a local ECS (keeping stopped tasks, as ECS does for an hour)
    ecs = local_ecs(tmp_path)
    try:
        before = len(os.listdir("/proc/self/fd"))
        # WHEN 30 tasks run and stop
        arns = [ecs.run_task(run_body(n))["tasks"][0]["taskArn"] for n in range(30)]
        for arn in arns:
            _wait_until_stopped(ecs, arn)
        # THEN the process holds no more descriptors than before (a pipe per task was leaked)
        after = len(os.listdir("/proc/self/fd"))
        assert after - before < 5, f"{after - before} descriptors more after 30 stopped tasks"
    finally:
        ecs.shutdown()


KEYS = Credentials.generate()
HELPER_TOKEN = "helper-token"


@contextmanager
def served(tmp_path: Path, **limits: float) -> Iterator[tuple[LocalEcs, str]]:
    """A local ECS behind its HTTP server, accepting KEYS; yields it and its URL."""
    ecs = local_ecs(tmp_path, **limits)
    server = serve(ecs, KEYS.secret_for, HELPER_TOKEN)
    try:
        yield ecs, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        ecs.shutdown()


def ecs_client(
    url: str, secret: str = KEYS.secret_access_key, key: str = KEYS.access_key_id
) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ecs",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def http(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers.items()), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), json.loads(err.read())


def test_boto3_sees_the_local_throttle_as_a_throttling_exception(tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    with served(tmp_path, launch_rate=0.001, launch_burst=1) as (_, url):
        client = ecs_client(url)
        client.run_task(cluster="c", taskDefinition="worker", startedBy="job-1")
        with pytest.raises(ClientError) as refused:
            client.run_task(cluster="c", taskDefinition="worker", startedBy="job-2")
        assert refused.value.response["Error"]["Code"] == "ThrottlingException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_client_signing_with_the_stacks_credentials_runs_and_describes_tasks(
    tmp_path: Path,
) -> None:
    with served(tmp_path) as (_, url):
        # GIVEN a boto3 ECS client holding the stack's credentials
        client = ecs_client(url)
        # WHEN it runs a task and describes it
        arn = client.run_task(cluster="c", taskDefinition="worker", startedBy="job-1")["tasks"][0][
            "taskArn"
        ]
        described = client.describe_tasks(cluster="c", tasks=[arn])
        # THEN both calls are answered
        assert [t["taskArn"] for t in described["tasks"]] == [arn], described


def test_a_client_signing_with_a_wrong_secret_gets_an_invalid_signature_error(
    tmp_path: Path,
) -> None:
    from botocore.exceptions import ClientError

    with served(tmp_path) as (ecs, url):
        # GIVEN a boto3 ECS client with the stack's key id but another secret
        client = ecs_client(url, secret="not-the-secret")
        # WHEN it asks for a task
        with pytest.raises(ClientError) as refused:
            client.run_task(cluster="c", taskDefinition="worker", startedBy="job-1")
        # THEN ECS's error for a bad signature comes back, and nothing was launched
        error = refused.value.response
        assert error["Error"]["Code"] == "InvalidSignatureException", error
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, error
        assert ecs.tasks == {}, "a refused call starts no task"


def test_a_client_with_an_unknown_key_gets_an_unrecognized_client_error(tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    with served(tmp_path) as (_, url):
        # GIVEN a boto3 ECS client with a key the stack never issued
        client = ecs_client(url, key="AKIAUNKNOWNUNKNOWNXX")
        # WHEN it lists tasks; THEN it is refused as ECS refuses unknown keys
        with pytest.raises(ClientError) as refused:
            client.list_tasks(cluster="c")
        error = refused.value.response["Error"]
        assert error["Code"] == "UnrecognizedClientException", error
        assert error["Message"] == "The security token included in the request is invalid.", error


def test_an_unsigned_run_task_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    with served(tmp_path) as (ecs, url):
        # GIVEN a RunTask call with no signature at all
        body = json.dumps({"cluster": "c", "taskDefinition": "worker"}).encode()
        headers = {
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.RunTask",
            "Content-Type": "application/x-amz-json-1.1",
        }
        # WHEN it is posted
        status, answer_headers, answer = http(url, "POST", body, headers)
        # THEN ECS's answer to a missing signature, and no task
        assert status == 403, answer
        assert answer["__type"] == "MissingAuthenticationTokenException", answer
        assert answer_headers.get("x-amzn-ErrorType") == answer["__type"], answer_headers
        assert ecs.tasks == {}, "an unsigned call starts no task"


def test_the_task_listing_helper_needs_the_stacks_bearer_token(tmp_path: Path) -> None:
    with served(tmp_path) as (_, url):
        # GIVEN the helper listing every task; WHEN it is asked without, then with, the token
        without, _, _ = http(url + "/_tasks")
        with_token, _, listing = http(
            url + "/_tasks", headers={"Authorization": f"Bearer {HELPER_TOKEN}"}
        )
        # THEN only the holder of the token reads it
        assert without == 403, "the listing reveals every task's environment"
        assert with_token == 200 and listing["tasks"] == [], listing


def test_the_fault_helper_needs_the_stacks_bearer_token(tmp_path: Path) -> None:
    with served(tmp_path) as (ecs, url):
        # GIVEN a fault to inject; WHEN it is posted without the token
        status, _, _ = http(
            url + "/_faults", "POST", json.dumps({"run_task": ["capacity"]}).encode()
        )
        # THEN it is refused and no fault is armed
        assert status == 403
        assert ecs.faults.run_task == [], "a refused request arms nothing"

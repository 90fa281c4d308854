"""Unit: the local ECS service ends a task it cannot start as ECS does (STOPPED, with a reason)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jobtracker_local.ecs import LocalEcs


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
    import pytest

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


def test_boto3_sees_the_local_throttle_as_a_throttling_exception(tmp_path: Path) -> None:
    import boto3
    import pytest
    from botocore.config import Config
    from botocore.exceptions import ClientError

    from jobtracker_local.ecs import serve

    ecs = local_ecs(tmp_path, launch_rate=0.001, launch_burst=1)
    server = serve(ecs)
    try:
        client = boto3.client(
            "ecs",
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        client.run_task(cluster="c", taskDefinition="worker", startedBy="job-1")
        with pytest.raises(ClientError) as refused:
            client.run_task(cluster="c", taskDefinition="worker", startedBy="job-2")
        assert refused.value.response["Error"]["Code"] == "ThrottlingException"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    finally:
        server.shutdown()
        ecs.shutdown()

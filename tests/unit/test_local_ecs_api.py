"""Unit: what a real boto3 ECS client, signed with the stack's credentials, sees of the local
ECS: the answers, errors, filters, paging and timestamps it would see on ECS (issue 12, item 3).

Every test drives the local ECS through its HTTP server, never through LocalEcs's methods."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jobtracker_local.ecs import LocalEcs, serve
from jobtracker_local.sigv4 import Credentials

KEYS = Credentials.generate()
REGION = "us-east-1"
ACCOUNT = "000000000000"


@dataclass
class Api:
    ecs: LocalEcs
    client: Any  # a boto3 ECS client
    events: list[dict[str, Any]] = field(default_factory=list)
    wire: list[dict[str, Any]] = field(default_factory=list)  # each answer's JSON, as sent

    def __post_init__(self) -> None:
        def keep(response_dict: dict[str, Any], **_: Any) -> None:
            self.wire.append(json.loads(response_dict["body"] or b"{}"))

        self.client.meta.events.register("before-parse.ecs.*", keep)

    def details(self, task_arn: str) -> list[dict[str, Any]]:
        """The `detail` of every event emitted for one task, in emission order."""
        return [e["detail"] for e in list(self.events) if e["detail"]["taskArn"] == task_arn]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start(tmp_path: Path, **limits: float) -> tuple[LocalEcs, Any, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    ecs = LocalEcs(events.append, REGION, tmp_path, 0.01, **limits)
    ecs.create_cluster("c")
    ecs.create_cluster("other")
    ecs.register_task_definition("worker", "worker", ["python", "-c", "pass"], {}, 2)
    # Runs until stopped: for what ECS shows of a task that has not ended.
    ecs.register_task_definition(
        "sleeper", "worker", ["python", "-c", "import time; time.sleep(60)"], {}, 1
    )
    return ecs, serve(ecs, KEYS.secret_for, "helper-token"), events


def client_for(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ecs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=KEYS.access_key_id,
        aws_secret_access_key=KEYS.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """A local ECS (clusters `c` and `other`; task definitions `worker`, which exits at once, and
    `sleeper`, which runs until stopped) behind its HTTP server, and a signed boto3 client."""
    ecs, server, events = start(tmp_path)
    try:
        yield Api(ecs, client_for(f"http://127.0.0.1:{server.server_address[1]}"), events)
    finally:
        server.shutdown()
        server.server_close()
        ecs.shutdown()


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    """The error response of a call that must fail."""
    with pytest.raises(ClientError) as refused:
        call()
    return dict(refused.value.response)


# ---- timestamps --------------------------------------------------------------------------------


def test_run_task_answers_epoch_timestamps_that_boto3_parses_into_datetimes(api: Api) -> None:
    # GIVEN a signed boto3 client
    # WHEN it runs a task
    task = api.client.run_task(cluster="c", taskDefinition="worker")["tasks"][0]
    # THEN createdAt came as an epoch number, as ECS's JSON sends it, and boto3 made a datetime
    sent = api.wire[-1]["tasks"][0]["createdAt"]
    assert isinstance(sent, float), f"createdAt was sent as {sent!r}"
    assert isinstance(task["createdAt"], datetime), f"createdAt is {task['createdAt']!r}"


def test_stop_task_answers_epoch_timestamps_that_boto3_parses_into_datetimes(api: Api) -> None:
    # GIVEN a running task
    arn = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]["taskArn"]
    # WHEN it is stopped
    task = api.client.stop_task(cluster="c", task=arn, reason="enough")["task"]
    # THEN its timestamps came as epoch numbers, and boto3 made datetimes of them
    for key in ("createdAt", "stoppingAt"):
        sent = api.wire[-1]["task"].get(key)
        assert isinstance(sent, float), f"{key} was sent as {sent!r}"
        assert isinstance(task.get(key), datetime), f"{key} is {task.get(key)!r}"


def test_events_keep_iso_timestamps_as_ecs_events_do(api: Api) -> None:
    # GIVEN a task that runs to its end
    arn = api.client.run_task(cluster="c", taskDefinition="worker")["tasks"][0]["taskArn"]
    wait_for("STOPPED event", lambda: any(d["lastStatus"] == "STOPPED" for d in api.details(arn)))
    # WHEN its STOPPED event is read
    stopped = next(d for d in api.details(arn) if d["lastStatus"] == "STOPPED")
    # THEN its timestamps are ISO strings, as in the "ECS Task State Change" events ECS emits
    for key in ("createdAt", "stoppedAt", "updatedAt"):
        assert isinstance(stopped[key], str) and stopped[key].endswith("Z"), (key, stopped[key])


# ---- versions ----------------------------------------------------------------------------------


def test_run_task_answers_version_1_and_the_first_event_carries_it(api: Api) -> None:
    # GIVEN a signed boto3 client; WHEN it runs a task
    task = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]
    wait_for("the first event", lambda: bool(api.details(task["taskArn"])))
    # THEN the task is at version 1, PROVISIONING, and ECS's first event says the same
    assert (task["version"], task["lastStatus"]) == (1, "PROVISIONING"), task
    first = api.details(task["taskArn"])[0]
    assert (first["version"], first["lastStatus"]) == (1, "PROVISIONING"), first


def test_every_change_raises_the_version_and_describe_tasks_agrees_with_the_last_event(
    api: Api,
) -> None:
    # GIVEN a task that runs to its end
    arn = api.client.run_task(cluster="c", taskDefinition="worker")["tasks"][0]["taskArn"]
    wait_for("STOPPED event", lambda: any(d["lastStatus"] == "STOPPED" for d in api.details(arn)))
    # WHEN its events are read and it is described
    versions = [d["version"] for d in api.details(arn)]
    described = api.client.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
    # THEN each event has the next version, and DescribeTasks shows the last one
    assert versions == list(range(1, len(versions) + 1)), f"event versions {versions}"
    assert described["version"] == versions[-1], (described["version"], versions)


def test_stop_task_answers_the_version_of_the_change_it_made(api: Api) -> None:
    # GIVEN a running task
    arn = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]["taskArn"]
    wait_for("RUNNING", lambda: any(d["lastStatus"] == "RUNNING" for d in api.details(arn)))
    # WHEN it is stopped
    answer = api.client.stop_task(cluster="c", task=arn)["task"]
    # THEN the answer's version is the one of the event telling desiredStatus=STOPPED
    told = [d for d in api.details(arn) if d["desiredStatus"] == "STOPPED"]
    assert told and told[0]["version"] == answer["version"], (answer["version"], told[:1])

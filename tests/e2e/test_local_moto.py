"""moto's server as the local stack runs it (jobtracker_local.moto_server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from jobtracker_local.stack import LocalStack, MotoProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    port = free_port()
    moto = MotoProcess(port, tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        LocalStack._wait_port(port)
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        ddb.create_table(
            TableName="t",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ddb
    finally:
        moto.stop()


def test_conditional_writes_to_one_item_are_atomic_across_threads(table: Any) -> None:
    # GIVEN a counter item and 8 threads each moving it on by compare-and-set
    table.put_item(TableName="t", Item={"pk": {"S": "c"}, "n": {"N": "0"}})
    wins: list[int] = []
    lock = threading.Lock()

    def bump(tries: int) -> None:
        for _ in range(tries):
            seen = int(table.get_item(TableName="t", Key={"pk": {"S": "c"}})["Item"]["n"]["N"])
            try:
                table.update_item(
                    TableName="t",
                    Key={"pk": {"S": "c"}},
                    UpdateExpression="SET n = :new",
                    ConditionExpression="n = :old",
                    ExpressionAttributeValues={
                        ":old": {"N": str(seen)},
                        ":new": {"N": str(seen + 1)},
                    },
                )
            except table.exceptions.ConditionalCheckFailedException:
                continue
            with lock:
                wins.append(seen)

    # WHEN they all race
    threads = [threading.Thread(target=bump, args=(40,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN no two writes passed their condition against the same value
    final = int(table.get_item(TableName="t", Key={"pk": {"S": "c"}})["Item"]["n"]["N"])
    assert len(wins) == final, f"{len(wins)} writes won but the counter moved {final}"
    assert len(set(wins)) == len(wins), "two writes each passed `n = old` for the same old"


@pytest.fixture
def adapters_on_server(table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The table adapters' clients pointed at this moto server."""
    from jobtracker.adapters.aws import reset_clients

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", table.meta.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_clients()
    yield
    reset_clients()


def test_concurrent_launchers_never_take_more_running_slots_than_the_limit(
    adapters_on_server: None,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from jobtracker.adapters.limits import DynamoRunningLimits

    # GIVEN the running-limit adapter on this moto server, a limit of 3
    limits = DynamoRunningLimits("t")
    # WHEN 40 attempts ask for a slot at once from 8 threads
    with ThreadPoolExecutor(8) as pool:
        granted = list(pool.map(lambda n: limits.acquire("d", f"job-{n}#1", 3), range(40)))
    # THEN exactly 3 were granted, and they are the holders
    assert sum(granted) == 3, granted
    assert limits.holders("d") == {f"job-{n}#1" for n, ok in enumerate(granted) if ok}


def test_an_arrays_counters_count_every_concurrent_child_end_once(
    adapters_on_server: None,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from jobtracker.adapters.arrays import DynamoArrayCounters
    from jobtracker.core.arrays import ArraySpec
    from jobtracker.core.domain import JobStatus

    # GIVEN an array of 120 whose children all launched
    counters = DynamoArrayCounters("t")
    counters.create("job-ends", ArraySpec(size=120))
    assert counters.claim("job-ends", 0, 120)
    S, F, C = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED
    outcomes = [S] * 100 + [F] * 15 + [C] * 5
    # WHEN 8 threads report the children's ends at once
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda o: counters.finish("job-ends", o), outcomes))
    # THEN every end is counted once, by its status
    found = counters.read("job-ends")
    assert found is not None and found[1].finished == {S: 100, F: 15, C: 5}, found


def test_concurrent_claims_hand_out_each_index_once_within_the_arrays_window(
    adapters_on_server: None,
) -> None:
    from jobtracker.adapters.arrays import DynamoArrayCounters
    from jobtracker.core.arrays import ArraySpec, Summary, launchable
    from jobtracker.core.domain import JobStatus

    # GIVEN an array of 200 that runs at most 20 children at once
    counters = DynamoArrayCounters("t")
    spec = ArraySpec(size=200, max_running=20)
    counters.create("job-claims", spec)
    taken: list[int] = []
    most_running = [0]
    lock = threading.Lock()

    def launcher() -> None:
        # read the counters, claim what the window allows, run those children to their end
        while True:
            found = counters.read("job-claims")
            summary = found[1] if found else Summary()
            if summary.launched >= spec.size:
                return
            more = launchable(spec, summary)
            if more and counters.claim("job-claims", summary.launched, more):
                with lock:
                    taken.extend(range(summary.launched, summary.launched + more))
                    most_running[0] = max(most_running[0], summary.running + more)
                for _ in range(more):
                    counters.finish("job-claims", JobStatus.SUCCEEDED)

    # WHEN 4 launchers claim at once
    threads = [threading.Thread(target=launcher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # THEN each index was claimed exactly once, and never more than 20 ran at once
    assert sorted(taken) == list(range(200)), "an index claimed twice or never"
    assert most_running[0] <= 20, most_running


def test_a_stopped_moto_server_leaves_no_process(tmp_path: Path) -> None:
    # GIVEN a moto process
    port = free_port()
    moto = MotoProcess(port, tmp_path / "moto.log").start()
    LocalStack._wait_port(port)
    # WHEN it is stopped
    moto.stop()
    # THEN its process is gone
    assert moto.proc is not None and moto.proc.poll() is not None, "moto's process still runs"

"""Integration: the launch governor (one DynamoDB item, GCRA) lets the account's burst through,
then its rate, and every launcher waits its turn instead of failing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from jobtracker.adapters.governor import DynamoGovernor
from tests.conftest import AwsEnv
from tests.helpers import call_api, ecs_task_count


def one(governor: DynamoGovernor, now: datetime) -> float:
    """One slot now: 0.0 when it is taken, else how long until the next."""
    got, wait = governor.acquire_many(now, 1)
    return 0.0 if got else wait


def test_the_governor_admits_the_burst_then_the_rate_keeping_its_margin(aws: AwsEnv) -> None:
    # GIVEN an account allowing 20 launches a second, 100 at once (the governor keeps 90%)
    governor = DynamoGovernor(aws.table, rate=20, burst=100)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    # a burst of 99 goes at once; the next waits one interval (1/18 s)
    assert [one(governor, now) for _ in range(99)] == [0.0] * 99
    assert one(governor, now) == pytest.approx(1 / 18, abs=1e-3)
    # a second later, 18 more (90% of the sustained rate), then waiting again
    later = now + timedelta(seconds=1)
    assert sum(one(governor, later) == 0.0 for _ in range(25)) == 18
    # after a quiet minute the whole burst is back
    idle = now + timedelta(minutes=1)
    assert sum(one(governor, idle) == 0.0 for _ in range(120)) == 99


def test_a_chunk_takes_as_many_slots_as_the_rate_has_in_one_write_and_shares_them(
    aws: AwsEnv,
) -> None:
    # GIVEN the same account, and two launchers (an array's fan-out, a plain launch) sharing it
    fanout = DynamoGovernor(aws.table, rate=20, burst=100)
    single = DynamoGovernor(aws.table, rate=20, burst=100)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    # WHEN the fan-out asks for 60 slots, a single launch takes one, and the fan-out asks again
    first = fanout.acquire_many(now, 60)
    single_wait = one(single, now)
    second = fanout.acquire_many(now, 60)
    # THEN it got 60, then what was left of the burst (99 - 60 - 1), and the wait for the next
    assert first == (60, 0.0), first
    assert single_wait == 0.0
    assert second[0] == 38 and second[1] == pytest.approx(1 / 18, abs=1e-3), second
    # AND nothing more now; a second later, 18 (the rate) in one write
    assert fanout.acquire_many(now, 10)[0] == 0
    assert fanout.acquire_many(now + timedelta(seconds=1), 30)[0] == 18


def test_a_reservation_books_distinct_slots_at_the_rate_for_launchers_sharing_it(
    aws: AwsEnv,
) -> None:
    # GIVEN the same account, its burst taken, and two launchers booking up to 10 s ahead
    first = DynamoGovernor(aws.table, rate=20, burst=100)
    second = DynamoGovernor(aws.table, rate=20, burst=100)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert first.acquire_many(now, 99) == (99, 0.0)
    # WHEN one books 3 slots, the other 2, then the first 1 more
    a, wait_a = first.reserve(now, 3, 10.0)
    b, _ = second.reserve(now, 2, 10.0)
    c, _ = first.reserve(now, 1, 10.0)
    # THEN every slot is its own, one interval (1/18 s) after the one before, in booking order
    slots = a + b + c
    assert wait_a == 0.0, "it got all it asked for"
    assert slots == pytest.approx([k / 18 for k in range(1, 7)], abs=2e-3), slots


def test_a_reservation_stops_at_its_horizon_and_says_when_the_next_comes_within_it(
    aws: AwsEnv,
) -> None:
    # GIVEN an account whose burst is taken
    governor = DynamoGovernor(aws.table, rate=20, burst=100)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    governor.acquire_many(now, 99)
    # WHEN 100 slots are asked for within 2 s
    slots, wait = governor.reserve(now, 100, 2.0)
    # THEN it books the 36 the rate has in 2 s, and the next comes within 2 s of now in 1/18 s
    assert len(slots) == 36 and max(slots) <= 2.0, (len(slots), max(slots))
    assert wait == pytest.approx(1 / 18, abs=2e-3), wait
    # AND the governor says how far it has booked
    assert governor.booked_until() == pytest.approx(now.timestamp() + 37 / 18 + 98 / 18, abs=0.01)


def slow_account(monkeypatch: pytest.MonkeyPatch, booking_seconds: int) -> None:
    """A deployment allowing 3 launches at once (the governor keeps 2), then one every 100 s
    (the governor keeps 90%: one every 111 s; slow enough that no slot comes back while a test
    runs, however busy the machine), booking up to `booking_seconds` ahead."""
    from tests.conftest import reset_caches

    monkeypatch.setenv("LAUNCH_RATE", "0.01")
    monkeypatch.setenv("LAUNCH_BURST", "3")
    monkeypatch.setenv("LAUNCH_BOOKING_SECONDS", str(booking_seconds))
    reset_caches()


def test_jobs_past_the_launch_rate_book_their_slots_and_are_queued_for_them(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a slow account, booking up to 300 s ahead
    slow_account(monkeypatch, 300)
    # WHEN 5 jobs are submitted at once
    replies = [call_api("POST", "/jobs", {"definition": "demo"}) for _ in range(5)]
    # THEN two launched; two booked the next slots (202, PENDING, nothing written on them) and
    # were queued for their slots' times; the fifth, past the horizon, waits visibly
    assert [r.status for r in replies] == [201, 201, 202, 202, 202]
    booked = [r.body for r in replies[2:4]]
    assert all(j["status"] == "PENDING" and not j.get("status_reason") for j in booked), booked
    assert replies[4].body["status_reason"].startswith("waiting for launch capacity")
    assert ecs_task_count(aws.cluster_arn) == 2, "RunTask never called past the rate"
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.launch_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "3", "each queued for its time"


def test_with_no_booking_jobs_past_the_launch_rate_wait_visibly_and_are_queued(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a slow account that books nothing ahead
    slow_account(monkeypatch, 0)
    # WHEN 4 jobs are submitted at once
    replies = [call_api("POST", "/jobs", {"definition": "demo"}) for _ in range(4)]
    # THEN two launched, two wait for launch capacity (202, PENDING, saying why), none failed
    assert [r.status for r in replies] == [201, 201, 202, 202]
    waiting = [r.body for r in replies[2:]]
    assert all(j["status"] == "PENDING" for j in waiting)
    assert all(j["status_reason"].startswith("waiting for launch capacity") for j in waiting)
    assert ecs_task_count(aws.cluster_arn) == 2, "RunTask never called past the rate"
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.launch_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "2", "each waits for its slot"

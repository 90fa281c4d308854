"""Integration: running limits stored in the jobs table (moto): taking and giving back a slot is
idempotent. (Concurrent launchers: tests/e2e/test_local_moto.py, on moto's server as the local
stack runs it, since moto in a test process does not apply conditional writes atomically.)"""

from __future__ import annotations

from jobtracker.adapters.limits import DynamoRunningLimits
from tests.conftest import AwsEnv


def test_a_slot_is_taken_once_however_often_it_is_asked_for(aws: AwsEnv) -> None:
    # GIVEN a limit of 2 on a definition
    limits = DynamoRunningLimits(aws.table)
    # WHEN the same attempt asks twice (a retried launch), then another attempt asks
    assert limits.acquire("d", "job-a#1", 2)
    assert limits.acquire("d", "job-a#1", 2), "an attempt that holds a slot keeps it"
    assert limits.acquire("d", "job-b#1", 2)
    # THEN two slots are held and a third attempt is refused
    assert limits.holders("d") == {"job-a#1", "job-b#1"}
    assert not limits.acquire("d", "job-c#1", 2), "the limit is full"


def test_giving_a_slot_back_twice_frees_it_once(aws: AwsEnv) -> None:
    # GIVEN a full limit of 1
    limits = DynamoRunningLimits(aws.table)
    assert limits.acquire("d", "job-a#1", 1)
    # WHEN its holder gives it back twice (a redelivered STOPPED), and an absent one too
    limits.release("d", "job-a#1")
    limits.release("d", "job-a#1", "job-gone#3")
    # THEN the slot is free for the next attempt, and nothing else changed
    assert limits.holders("d") == set()
    assert limits.acquire("d", "job-b#1", 1)
    assert limits.holders("d") == {"job-b#1"}


def test_limits_of_different_definitions_are_apart(aws: AwsEnv) -> None:
    # GIVEN one slot taken on definition d WHEN e is asked THEN e has its own slots
    limits = DynamoRunningLimits(aws.table)
    assert limits.acquire("d", "job-a#1", 1)
    assert limits.acquire("e", "job-b#1", 1)
    assert limits.holders("e") == {"job-b#1"}

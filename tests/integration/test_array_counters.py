"""Integration: an array's counters on moto (adapters/arrays.py). (Concurrent ends and claims:
tests/e2e/test_local_moto.py, on moto's server as the local stack runs it, since moto in a test
process does not apply writes atomically.)"""

from __future__ import annotations

import pytest

from jobtracker.adapters.arrays import DynamoArrayCounters
from jobtracker.core.arrays import ArraySpec, Summary
from jobtracker.core.domain import JobStatus
from jobtracker.usecases.ports import ArrayExists
from tests.conftest import AwsEnv

S, F, C = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED


def test_an_arrays_counters_start_at_zero_and_are_made_once(aws: AwsEnv) -> None:
    counters = DynamoArrayCounters(aws.table)
    counters.create("job-p", ArraySpec(size=100, max_running=10, tolerated_failure_percent=5))
    spec, summary = counters.read("job-p") or (None, None)
    assert spec == ArraySpec(size=100, max_running=10, tolerated_failures=5), spec
    assert summary == Summary(), summary
    with pytest.raises(ArrayExists):
        counters.create("job-p", ArraySpec(size=100))


def test_each_child_end_is_counted_by_its_status(aws: AwsEnv) -> None:
    counters = DynamoArrayCounters(aws.table)
    counters.create("job-p", ArraySpec(size=4))
    assert counters.claim("job-p", 0, 4)
    after = [counters.finish("job-p", o)[1] for o in (S, F, S, C)]
    assert after[-1] == Summary(launched=4, finished={S: 2, F: 1, C: 1}), after[-1]
    assert [a.done for a in after] == [1, 2, 3, 4], "each ADD answers the counters after it"


def test_a_claim_on_a_stale_read_is_refused(aws: AwsEnv) -> None:
    counters = DynamoArrayCounters(aws.table)
    counters.create("job-p", ArraySpec(size=10))
    assert counters.claim("job-p", 0, 3) is True
    assert counters.claim("job-p", 0, 3) is False, "indexes 0-2 were handed out already"
    assert counters.claim("job-p", 3, 3) is True


def test_reset_makes_the_counters_what_the_children_say(aws: AwsEnv) -> None:
    # GIVEN counters that counted one child twice (a redelivered end)
    counters = DynamoArrayCounters(aws.table)
    counters.create("job-p", ArraySpec(size=3))
    counters.claim("job-p", 0, 3)
    for status in (S, S, S, F):
        counters.finish("job-p", status)
    # WHEN they are reset from the children as read THEN they are exact
    counters.reset("job-p", Summary(launched=3, finished={S: 2, F: 1}))
    _, summary = counters.read("job-p") or (None, Summary())
    assert summary == Summary(launched=3, finished={S: 2, F: 1}), summary


def test_reopen_makes_the_failures_pending_again_once(aws: AwsEnv) -> None:
    # GIVEN a finished array of 5: 3 succeeded, 2 failed
    counters = DynamoArrayCounters(aws.table)
    counters.create("job-p", ArraySpec(size=5, tolerated_failures=2))
    assert counters.claim("job-p", 0, 5)
    for status in (S, S, S, F, F):
        counters.finish("job-p", status)
    found = counters.read("job-p")
    assert found is not None
    seen = found[1]
    # WHEN a retry round of the failures opens
    assert counters.reopen("job-p", seen, frozenset({F})) is True
    # THEN the two failures are neither launched nor finished, the round is 1, the cursor 0
    after = counters.read("job-p")
    assert after is not None
    summary = after[1]
    assert (summary.launched, summary.finished) == (3, {S: 3}), summary
    assert (summary.round, summary.redo, summary.cursor) == (1, frozenset({F}), 0), summary
    # AND a second reopen from the same reading is refused (one retry-failed at a time)
    assert counters.reopen("job-p", seen, frozenset({F})) is False
    # AND a claim in the round moves its cursor
    assert counters.claim("job-p", 3, 1, cursor=4) is True
    moved = counters.read("job-p")
    assert moved is not None and (moved[1].launched, moved[1].cursor) == (4, 4), moved

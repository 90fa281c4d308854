"""Unit: an array's parent status from its children's outcomes, its tolerance and its running
window (core.arrays), over every sequence of child outcomes of small arrays."""

from __future__ import annotations

import itertools

import pytest

from jobtracker.core.arrays import (
    FINAL,
    ArraySpec,
    Summary,
    launchable,
    parent_status,
    recount,
    redo_of,
    spec_error,
)
from jobtracker.core.domain import JobStatus

S, F, T, C = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED
ORDER = {JobStatus.PENDING: 0, JobStatus.RUNNING: 1}  # then a final status


def expected_final(spec: ArraySpec, outcomes: tuple[JobStatus, ...]) -> JobStatus:
    """The rule as the issue states it, written out plainly."""
    if sum(o in (F, T) for o in outcomes) > spec.tolerated:
        return F
    return C if C in outcomes else S


def statuses_along(spec: ArraySpec, outcomes: tuple[JobStatus, ...]) -> list[JobStatus]:
    """The parent's status after each child's launch and after each child's end, in order."""
    summary = Summary(launched=spec.size)  # every child launched, then they end one by one
    seen = [parent_status(spec, Summary()).status, parent_status(spec, summary).status]
    for outcome in outcomes:
        summary.finished[outcome] = summary.count(outcome) + 1
        seen.append(parent_status(spec, summary).status)
    return seen


@pytest.mark.parametrize("size", [2, 3, 4])
@pytest.mark.parametrize("tolerated", [0, 1, 2])
def test_every_sequence_of_child_outcomes_ends_the_parent_by_the_rule_in_any_order(
    size: int, tolerated: int
) -> None:
    # GIVEN an array of `size` children tolerating `tolerated` failures
    spec = ArraySpec(size=size, tolerated_failures=tolerated)
    for outcomes in itertools.product(FINAL, repeat=size):
        finals = set()
        for order in set(itertools.permutations(outcomes)):
            # WHEN its children end in this order
            seen = statuses_along(spec, order)
            # THEN it starts PENDING, is RUNNING once a child is launched, ...
            assert seen[:2] == [JobStatus.PENDING, JobStatus.RUNNING], (order, seen)
            # ... never moves back, and never leaves a final status once it has one
            ranks = [ORDER.get(s, 2) for s in seen]
            assert ranks == sorted(ranks), (order, seen)
            first_final = next(s for s in seen if s.terminal)
            assert all(s == first_final for s in seen[seen.index(first_final) :]), (order, seen)
            finals.add(seen[-1])
        # AND every order of the same outcomes ends it the same way, as the rule says
        assert finals == {expected_final(spec, outcomes)}, (outcomes, finals)


def test_more_failures_than_tolerated_fail_the_parent_before_the_others_finish() -> None:
    # GIVEN 10 children tolerating 2 failures, 3 of them failed and 4 still running
    spec = ArraySpec(size=10, tolerated_failures=2)
    summary = Summary(launched=10, finished={F: 2, T: 1, S: 3})
    # WHEN the parent's status is read THEN it is FAILED at once, saying why
    verdict = parent_status(spec, summary)
    assert verdict.status is JobStatus.FAILED
    assert verdict.reason == "3 of 10 children failed (2 tolerated)", verdict.reason


def test_failures_within_tolerance_let_the_parent_succeed_saying_so() -> None:
    spec = ArraySpec(size=4, tolerated_failure_percent=50)
    verdict = parent_status(spec, Summary(launched=4, finished={S: 2, T: 2}))
    assert verdict.status is JobStatus.SUCCEEDED
    assert verdict.reason == "2 of 4 children succeeded, 2 failed (tolerated)", verdict.reason


@pytest.mark.parametrize(
    ("size", "percent", "tolerated"), [(10, 0, 0), (10, 25, 2), (3, 50, 1), (10_000, 0.5, 50)]
)
def test_a_tolerated_percent_is_a_count_of_the_size_rounded_down(
    size: int, percent: float, tolerated: int
) -> None:
    assert ArraySpec(size=size, tolerated_failure_percent=percent).tolerated == tolerated


def test_a_cancelled_parent_is_cancelling_until_its_children_are_finished() -> None:
    spec = ArraySpec(size=3)
    running = Summary(launched=2, finished={S: 1})
    assert parent_status(spec, running, cancel_requested=True).status is JobStatus.CANCELLING
    ended = Summary(launched=2, finished={S: 1, C: 2})  # the unlaunched one counts as cancelled
    assert parent_status(spec, ended, cancel_requested=True).status is JobStatus.CANCELLED


@pytest.mark.parametrize("max_running", [None, 1, 3, 20])
def test_children_are_launched_within_the_window_and_each_index_once(
    max_running: int | None,
) -> None:
    # GIVEN an array of 20 whose children end one at a time
    spec = ArraySpec(size=20, max_running=max_running)
    summary = Summary()
    launched_at_once = []
    while summary.done < spec.size:
        # WHEN as many as may be are launched, then the oldest running one ends
        more = launchable(spec, summary)
        summary.launched += more
        launched_at_once.append(summary.running)
        if summary.running:
            summary.finished[S] = summary.count(S) + 1
    # THEN never more than max_running ran at once, and exactly `size` were launched
    assert max(launched_at_once) == (max_running or 20), launched_at_once
    assert summary.launched == 20 and launchable(spec, summary) == 0


def test_recount_gives_the_exact_counters_from_the_childrens_statuses() -> None:
    children = dict(enumerate([S, S, F, JobStatus.RUNNING, C]))
    summary = recount(Summary(launched=5, finished={S: 9}), children)
    assert summary.launched == 5 and summary.running == 1, summary
    assert summary.finished == {S: 2, F: 1, C: 1}, summary.finished


def test_recount_counts_an_index_closed_before_its_child_was_made_as_cancelled() -> None:
    # GIVEN an array of 6 closed after 2 children were made (its other 4 never will be)
    summary = recount(Summary(launched=6, closed=True), {0: S, 1: F})
    # THEN the 4 never made count as CANCELLED, and nothing is left running
    assert summary.finished == {S: 1, F: 1, C: 4}, summary.finished
    assert summary.running == 0 and summary.closed, summary


def test_recount_in_a_retry_round_leaves_out_the_children_still_to_run_again() -> None:
    # GIVEN a retry round of an array of 6 (3 succeeded, 3 failed) that has walked indexes 0-2
    # and launched index 2 again: 3 + 1 launched
    round_ = Summary(launched=4, round=1, redo=frozenset({F, T}), cursor=3)
    children = {0: S, 1: S, 2: JobStatus.RUNNING, 3: F, 4: S, 5: T}
    # THEN the failed children past the cursor are not counted (they will run), the rest are
    summary = recount(round_, children)
    assert summary.finished == {S: 3}, summary.finished
    assert summary.running == 1, "the one running again"


def test_retry_failed_runs_again_failures_or_everything_that_did_not_succeed() -> None:
    assert redo_of(S) == {F, T}, "an array that succeeded: its tolerated failures"
    assert redo_of(F) == {F, T, C}, "one that failed: what its failure cancelled too"


@pytest.mark.parametrize(
    ("spec", "field", "problem"),
    [
        (ArraySpec(size=1), "size", "must be 2-10,000"),
        (ArraySpec(size=10_001), "size", "must be 2-10,000"),
        (ArraySpec(size=5, max_running=0), "max_running", "must be 1-5 (the array's size)"),
        (ArraySpec(size=5, max_running=6), "max_running", "must be 1-5 (the array's size)"),
        (ArraySpec(size=5, tolerated_failures=-1), "tolerated_failures", "must be 0-5"),
        (
            ArraySpec(size=5, tolerated_failures=1, tolerated_failure_percent=10),
            "tolerated_failure_percent",
            "not both",
        ),
        (
            ArraySpec(size=5, tolerated_failure_percent=101),
            "tolerated_failure_percent",
            "must be 0-100",
        ),
    ],
)
def test_an_array_no_array_can_run_with_names_the_field_and_the_problem(
    spec: ArraySpec, field: str, problem: str
) -> None:
    found = spec_error(spec)
    assert found is not None and found[0] == field and problem in found[1], found


def test_the_largest_array_with_a_window_and_a_tolerance_is_valid() -> None:
    spec = ArraySpec(size=10_000, max_running=10_000, tolerated_failure_percent=100)
    assert spec_error(spec) is None

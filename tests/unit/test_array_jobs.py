"""Array jobs end to end on the fakes: submit, fan-out under max_running, each child's end
settled (duplicated too), the failure threshold, cancel, and the reconciler's hand-off."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from jobtracker.core.arrays import ArraySpec
from jobtracker.core.domain import Job, JobStatus, child_id, iso
from jobtracker.core.submission import Submission
from jobtracker.edge.work import handle_work_message
from jobtracker.usecases.arrays import settle
from jobtracker.usecases.cancel import cancel_job
from jobtracker.usecases.ports import MemoryArrayCounters, Work
from jobtracker.usecases.query import list_children, read_job
from jobtracker.usecases.reconcile import reconcile
from jobtracker.usecases.submit import SubmitKind, submit_job
from jobtracker.wiring import Deps
from tests.fakes import FakeClock, array_deps, launcher, queue, repo

S, F, T, C = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED


def submit_array(deps: Deps, **spec: Any) -> Job:
    submission = Submission(definition="demo", array=ArraySpec(**spec))
    return submit_job(submission, caller="arn:aws:iam::1:user/u", deps=deps).job


def fanouts(deps: Deps) -> list[dict[str, Any]]:
    return [b for u, b, _ in queue(deps).sent if b.get("kind") == Work.FANOUT.value]


def drain(deps: Deps) -> int:
    """Hand every FANOUT sent so far (and those it sends) to the work handler; how many ran."""
    ran = 0
    while True:
        pending = [
            (i, b) for i, (u, b, _) in enumerate(queue(deps).sent) if b.get("kind") == "fanout"
        ]
        if not pending:
            return ran
        for i, body in pending:
            queue(deps).sent[i] = ("done", {}, 0)
            handle_work_message(json.dumps(body), deps)
            ran += 1


def children(deps: Deps, parent: Job) -> list[Job]:
    return [j for j in repo(deps).jobs.values() if j.parent_id == parent.job_id]


def running(deps: Deps, parent: Job) -> list[Job]:
    return sorted(
        (j for j in children(deps, parent) if not j.status.terminal and j.current.task_arn),
        key=lambda j: j.array_index,
    )


def end(deps: Deps, job_id: str, status: JobStatus, times: int = 1) -> None:
    """The child's task ends `status` (as its events would write it), and the table's stream
    hands the change to settle `times` times (a redelivery)."""
    stored = repo(deps).jobs[job_id]
    previous = stored.status
    stored.status, stored.finished_at = status, iso(deps.clock())
    for _ in range(times):
        settle(stored.clone(), previous, deps)


def parent_of(deps: Deps, parent: Job) -> Job:
    return repo(deps).jobs[parent.job_id]


def test_an_array_is_one_parent_stored_at_once_and_no_task_of_its_own() -> None:
    # GIVEN an array of 10,000
    deps = array_deps()
    # WHEN it is submitted
    submitted = submit_job(
        Submission(definition="demo", array=ArraySpec(size=10_000)), caller="u", deps=deps
    )
    # THEN the answer is the PENDING parent, its counters made, one FANOUT queued, no task
    assert submitted.kind is SubmitKind.ACCEPTED, submitted.kind
    assert submitted.job.status is JobStatus.PENDING and submitted.job.is_array
    assert list(repo(deps).jobs) == [submitted.job.job_id], "one job item, whatever the size"
    assert deps.arrays.read(submitted.job.job_id) is not None, "its counters"
    assert len(fanouts(deps)) == 1 and not launcher(deps).requests, queue(deps).sent


def test_children_run_within_max_running_and_each_index_once() -> None:
    # GIVEN an array of 10 with at most 3 running at once
    deps = array_deps()
    parent = submit_array(deps, size=10, max_running=3)
    most = 0
    # WHEN its fan-out runs and its children end one at a time, oldest first
    drain(deps)
    while now_running := running(deps, parent):
        most = max(most, len(now_running))
        end(deps, now_running[0].job_id, S)
        drain(deps)
    # THEN never more than 3 ran at once, every index ran once, and the parent SUCCEEDED
    assert most == 3, most
    tokens = [r.client_token for r in launcher(deps).requests]
    assert len(tokens) == 10 and len(set(tokens)) == 10, tokens
    indexes = sorted(j.array_index for j in children(deps, parent))
    assert indexes == list(range(10)), indexes
    done = parent_of(deps, parent)
    assert done.status is S and done.status_reason == "10 of 10 children succeeded", done


def test_the_parent_runs_once_its_first_children_are_launched() -> None:
    deps = array_deps()
    parent = submit_array(deps, size=4)
    drain(deps)
    assert parent_of(deps, parent).status is JobStatus.RUNNING
    assert len(running(deps, parent)) == 4, "no max_running: all at once (the governor paces)"


def test_a_child_is_told_its_index_and_the_arrays_size() -> None:
    deps = array_deps()
    submit_array(deps, size=3)
    drain(deps)
    last = launcher(deps).requests[-1]
    container = last.params["overrides"]["containerOverrides"][0]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert (env["JOB_ARRAY_INDEX"], env["JOB_ARRAY_SIZE"]) == ("2", "3"), env


def test_an_end_counted_twice_never_finishes_the_array_early() -> None:
    # GIVEN an array of 4, all running
    deps = array_deps()
    parent = submit_array(deps, size=4)
    drain(deps)
    kids = running(deps, parent)
    # WHEN three children's ends are each delivered twice (6 counted of 4)
    for kid in kids[:3]:
        end(deps, kid.job_id, S, times=2)
    drain(deps)
    # THEN the parent still runs: the recount found one child running
    assert parent_of(deps, parent).status is JobStatus.RUNNING
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].done == 3, found
    # WHEN the last one ends THEN the array is finished, its summary exact
    end(deps, kids[3].job_id, S)
    drain(deps)
    assert parent_of(deps, parent).status is S
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].finished == {S: 4}, found


@pytest.mark.parametrize("outcome", [F, T])
def test_one_failure_more_than_tolerated_fails_the_parent_and_cancels_the_rest(
    outcome: JobStatus,
) -> None:
    # GIVEN an array of 6, 2 at once, tolerating 1 failure
    deps = array_deps()
    parent = submit_array(deps, size=6, max_running=2, tolerated_failures=1)
    drain(deps)
    first, second = running(deps, parent)
    # WHEN one child fails (tolerated) THEN the array goes on
    end(deps, first.job_id, outcome)
    drain(deps)
    assert parent_of(deps, parent).status is JobStatus.RUNNING
    third = running(deps, parent)[-1]
    # WHEN a second one fails
    end(deps, second.job_id, outcome)
    drain(deps)
    # THEN the parent FAILED, saying why; the running child is being stopped
    failed = parent_of(deps, parent)
    assert failed.status is F, failed
    assert failed.status_reason == "2 of 6 children failed (1 tolerated)", failed.status_reason
    assert [arn for arn, _ in launcher(deps).stopped] == [third.current.task_arn]
    stopping = repo(deps).jobs[third.job_id]
    assert stopping.status is JobStatus.CANCELLING, stopping.status
    assert "array" in (stopping.status_reason or "") and "failed" in (stopping.status_reason or "")
    # WHEN that child stops THEN no other child was ever launched, and the summary is exact
    end(deps, third.job_id, C)
    drain(deps)
    assert len(launcher(deps).requests) == 3, "the indexes not yet launched never are"
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].finished == {outcome: 2, C: 4}, found


def test_a_cancelled_array_cancels_its_running_children_then_ends_cancelled() -> None:
    # GIVEN an array of 5, 2 running
    deps = array_deps()
    parent = submit_array(deps, size=5, max_running=2)
    drain(deps)
    kids = running(deps, parent)
    # WHEN it is cancelled
    answered = cancel_job(parent.job_id, "not needed", deps)
    drain(deps)
    # THEN it is CANCELLING and both running children are being stopped
    assert answered.status is JobStatus.CANCELLING, answered.status
    assert len(launcher(deps).stopped) == 2, launcher(deps).stopped
    # WHEN their tasks stop THEN the parent is CANCELLED, every index counted
    for kid in kids:
        end(deps, kid.job_id, C)
    drain(deps)
    done = parent_of(deps, parent)
    assert done.status is C and done.status_reason == "5 of 5 children cancelled", done
    assert len(launcher(deps).requests) == 2


def test_an_array_cancelled_before_its_fanout_never_launches_a_child() -> None:
    deps = array_deps()
    parent = submit_array(deps, size=100)
    cancel_job(parent.job_id, None, deps)
    drain(deps)
    assert parent_of(deps, parent).status is C
    assert not launcher(deps).requests and not children(deps, parent)


def test_cancelling_one_child_leaves_its_siblings_alone() -> None:
    deps = array_deps()
    parent = submit_array(deps, size=3)
    drain(deps)
    kid = running(deps, parent)[0]
    cancel_job(kid.job_id, None, deps)
    end(deps, kid.job_id, C)
    drain(deps)
    assert parent_of(deps, parent).status is JobStatus.RUNNING
    assert len(running(deps, parent)) == 2
    assert len(launcher(deps).stopped) == 1


def test_the_reconciler_hands_a_quiet_parent_off_and_never_launches_it() -> None:
    # GIVEN an array whose FANOUT was lost
    deps = array_deps()
    parent = submit_array(deps, size=3)
    queue(deps).sent.clear()
    # WHEN the reconciler runs after the quiet period
    clock = deps.clock
    assert isinstance(clock, FakeClock)
    clock.advance(deps.settings.quiet_after_seconds + 1)
    reconcile(deps)
    # THEN it handed the parent off (and launched nothing itself)
    assert [b["job_id"] for b in fanouts(deps)] == [parent.job_id]
    assert not launcher(deps).requests
    drain(deps)
    assert len(running(deps, parent)) == 3


def test_a_replayed_submission_makes_no_second_array() -> None:
    deps = array_deps()
    submission = Submission(definition="demo", array=ArraySpec(size=3))
    first = submit_job(submission, caller="u", idempotency_key="k1", deps=deps)
    drain(deps)
    again = submit_job(submission, caller="u", idempotency_key="k1", deps=deps)
    drain(deps)
    assert again.kind is SubmitKind.REPLAYED and again.job.job_id == first.job.job_id
    assert len(launcher(deps).requests) == 3, "each child launched once"
    assert len([j for j in repo(deps).jobs.values() if j.is_array]) == 1


def test_a_parent_reads_with_its_summary_and_lists_its_children_in_index_order() -> None:
    # GIVEN an array of 5 whose child 1 failed
    deps = array_deps()
    parent = submit_array(deps, size=5, tolerated_failures=2)
    drain(deps)
    end(deps, child_id(parent.job_id, 1), F)
    # WHEN it is read
    found = read_job(parent.job_id, deps)
    # THEN its counters come with it
    assert found.array is not None and found.array[1].count(F) == 1, found.array
    # AND its children list in index order, filtered by status, paged
    page, token = list_children(parent.job_id, None, 2, None, deps)
    assert [j.array_index for j in page] == [0, 1] and token == "2", (page, token)
    page, token = list_children(parent.job_id, None, 10, token, deps)
    assert [j.array_index for j in page] == [2, 3, 4] and token is None
    failed, _ = list_children(parent.job_id, "FAILED", 10, None, deps)
    assert [j.array_index for j in failed] == [1]


def test_a_schedules_tick_can_fan_out_an_array() -> None:
    from jobtracker.core.submission import ScheduledRun
    from jobtracker.usecases.periodic import run_tick

    # GIVEN a nightly tick whose job is an array of 4
    deps = array_deps()
    run = ScheduledRun(
        schedule="nightly",
        scheduled_time="2026-01-01T00:00:00Z",
        job=Submission(definition="demo", array=ArraySpec(size=4)),
    )
    # WHEN it fires (and is delivered twice)
    made = run_tick(run, deps)
    run_tick(run, deps)
    drain(deps)
    # THEN one parent, its four children launched once each, and no task of its own
    parent = repo(deps).jobs[made.job_id]
    assert parent.is_array and parent.schedule_name == "nightly", parent
    assert len(launcher(deps).requests) == 4, launcher(deps).requests
    assert len(running(deps, parent)) == 4


def finished_with_failures(deps: Deps, **spec: Any) -> tuple[Job, list[Job]]:
    """An array whose children ran: every third one FAILED, the rest SUCCEEDED."""
    parent = submit_array(deps, **spec)
    drain(deps)
    ran: list[Job] = []
    while now_running := running(deps, parent):
        kid = now_running[0]
        end(deps, kid.job_id, F if kid.array_index % 3 == 0 else S)
        ran.append(kid)
        drain(deps)
    return parent_of(deps, parent), ran


def test_retry_failed_runs_the_failed_children_again_in_their_indexes() -> None:
    from jobtracker.usecases.arrays import retry_failed

    # GIVEN an array of 9, 2 at once, tolerating its 3 failures: it SUCCEEDED
    deps = array_deps()
    parent, _ = finished_with_failures(deps, size=9, max_running=2, tolerated_failures=3)
    assert parent.status is S, parent
    launches = len(launcher(deps).requests)
    # WHEN its failed children are retried
    again = retry_failed(parent.job_id, deps)
    # THEN the parent runs again, saying why
    assert again.status is JobStatus.RUNNING, again
    assert again.status_reason == "running 3 of 9 children again (retry-failed)"
    # AND the failed ones (indexes 0, 3, 6) run again, within the window, as new attempts
    drain(deps)
    most = 0
    while now_running := running(deps, parent):
        most = max(most, len(now_running))
        end(deps, now_running[0].job_id, S)
        drain(deps)
    rerun = launcher(deps).requests[launches:]
    assert len(rerun) == 3 and most <= 2, (rerun, most)
    for index in (0, 3, 6):
        kid = repo(deps).jobs[child_id(parent.job_id, index)]
        assert (kid.status, kid.attempt) == (S, 2), (index, kid.status, kid.attempt)
    # AND the parent ends SUCCEEDED with every child counted once
    done = parent_of(deps, parent)
    assert done.status is S and done.status_reason == "9 of 9 children succeeded", done
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].finished == {S: 9}, found


def test_retry_failed_of_a_failed_array_runs_what_its_failure_stopped_too() -> None:
    from jobtracker.usecases.arrays import retry_failed

    # GIVEN an array of 6, 1 at once, none tolerated: its first child failed it
    deps = array_deps()
    parent = submit_array(deps, size=6, max_running=1)
    drain(deps)
    end(deps, running(deps, parent)[0].job_id, F)
    drain(deps)
    assert parent_of(deps, parent).status is F and len(launcher(deps).requests) == 1
    # WHEN it is retried
    retry_failed(parent.job_id, deps)
    drain(deps)
    while now_running := running(deps, parent):
        end(deps, now_running[0].job_id, S)
        drain(deps)
    # THEN the failed child ran again and the five never launched ran, one at a time
    assert len(launcher(deps).requests) == 7, launcher(deps).requests
    done = parent_of(deps, parent)
    assert done.status is S, done
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].finished == {S: 6}, found


@pytest.mark.parametrize(
    ("why", "setup", "message"),
    [
        ("still running", "running", "only a finished array"),
        ("no failures", "succeeded", "no failed children"),
        ("cancelled", "cancelled", "only a finished array"),
        ("a plain job", "plain", "not an array"),
    ],
)
def test_retry_failed_is_refused_when_there_is_nothing_to_run_again(
    why: str, setup: str, message: str
) -> None:
    from jobtracker.core.errors import Conflict
    from jobtracker.usecases.arrays import retry_failed

    deps = array_deps()
    if setup == "plain":
        job = submit_job(Submission(definition="demo"), caller="u", deps=deps).job
    else:
        job = submit_array(deps, size=2)
        drain(deps)
        if setup == "succeeded":
            for kid in running(deps, job):
                end(deps, kid.job_id, S)
            drain(deps)
        elif setup == "cancelled":
            cancel_job(job.job_id, None, deps)
            drain(deps)
            for kid in running(deps, job):
                end(deps, kid.job_id, C)
            drain(deps)
    with pytest.raises(Conflict) as refused:
        retry_failed(job.job_id, deps)
    assert message in str(refused.value), (why, refused.value)


class Slots:
    """A launch governor with `free` slots now, then one every `interval` seconds."""

    def __init__(self, free: int, interval: float = 0.25) -> None:
        self.free, self.interval, self.asked = free, interval, 0

    def acquire(self, now: Any) -> float:
        self.asked += 1
        if self.free > 0:
            self.free -= 1
            return 0.0
        return self.interval

    def acquire_many(self, now: Any, wanted: int) -> tuple[int, float]:
        self.asked += 1
        got = min(wanted, self.free)
        self.free -= got
        return got, (0.0 if got == wanted else self.interval)


def test_the_fanout_launches_only_what_the_launch_rate_gives_it_and_comes_back_for_more() -> None:
    # GIVEN an array of 100 and a launch rate with 10 slots free now
    deps = array_deps()
    deps.governor = Slots(free=10)
    parent = submit_array(deps, size=100)
    queue(deps).sent.clear()
    # WHEN its fan-out runs once
    handle_work_message(json.dumps(fanout(parent)), deps)
    # THEN it launched 10 children, made no child it could not launch, and comes back in 1 s
    assert len(launcher(deps).requests) == 10, len(launcher(deps).requests)
    assert len(children(deps, parent)) == 10
    again = [(b, d) for _, b, d in queue(deps).sent if b.get("kind") == "fanout"]
    assert again == [(fanout(parent), 1)], again
    assert not [b for _, b, _ in queue(deps).sent if b.get("kind") == "launch"], "no herd"


def fanout(parent: Job) -> dict[str, Any]:
    return {"kind": "fanout", "job_id": parent.job_id, "attempt": 1}


class EndDuringClaim(MemoryArrayCounters):
    """Counters that let one child end between a fan-out's read and its claim (a concurrent
    settle), once."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Any = None

    def claim(self, parent_id: str, seen: int, more: int, cursor: int | None = None) -> bool:
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return super().claim(parent_id, seen, more, cursor)


def test_an_end_that_comes_while_a_fanout_claims_never_leaves_its_slot_unused() -> None:
    # GIVEN an array of 10, 2 at once: children 0 and 1 running
    deps = array_deps()
    counters = EndDuringClaim()
    deps.arrays = counters
    parent = submit_array(deps, size=10, max_running=2)
    drain(deps)
    first, second = running(deps, parent)
    # WHEN child 0 ends, and child 1 ends while the fan-out that follows is claiming
    counters.meanwhile = lambda: end(deps, second.job_id, S)
    end(deps, first.job_id, S)
    drain(deps)
    # THEN both freed slots were filled: two children run, and the array goes on to the end
    assert len(running(deps, parent)) == 2, [j.array_index for j in running(deps, parent)]
    while now_running := running(deps, parent):
        end(deps, now_running[0].job_id, S)
        drain(deps)
    assert parent_of(deps, parent).status is S


OUTCOMES = (S, S, F, T)


@pytest.mark.parametrize("order", sorted(set(itertools.permutations(range(4)))))
@pytest.mark.parametrize("tolerated", [1, 2])
def test_any_order_of_ends_delivered_twice_gives_the_same_parent_and_exact_summary(
    order: tuple[int, ...], tolerated: int
) -> None:
    # GIVEN an array of 4 running at once: two will succeed, one fail, one time out
    deps = array_deps()
    parent = submit_array(deps, size=4, tolerated_failures=tolerated)
    drain(deps)
    # WHEN their ends come in this order, the first one delivered twice by the stream
    for n, index in enumerate(order):
        job_id = child_id(parent.job_id, index)
        if not repo(deps).jobs[job_id].status.terminal:
            end(deps, job_id, OUTCOMES[index], times=2 if n == 0 else 1)
        drain(deps)
    # THEN the parent ends by the rule (2 failures: FAILED past 1 tolerated, SUCCEEDED with 2)
    done = parent_of(deps, parent)
    expected = F if tolerated == 1 else S
    assert done.status is expected, (order, done.status, done.status_reason)
    # AND once every child ended, the summary counts each exactly once
    found = deps.arrays.read(parent.job_id)
    assert found is not None
    kids = {k.array_index: k.status for k in children(deps, parent)}
    counted = {s: n for s, n in found[1].finished.items() if n}
    exact = {s: sum(1 for v in kids.values() if v is s) for s in set(kids.values())}
    assert counted == exact, (order, counted, exact)

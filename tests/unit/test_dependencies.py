"""Job dependencies on the fakes: WAITING, release and cancellation through the table's stream
(settle_record on real stream images), every condition against every final status, the
already-finished dependency, duplicates and reordering, the reconciler's backstop, and arrays
that wait index by index or one child after another."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest

from jobtracker.adapters.records import job_record
from jobtracker.core import dependencies as rules
from jobtracker.core.arrays import ArraySpec
from jobtracker.core.dependencies import Condition, Dependency, Mode, Verdict
from jobtracker.core.domain import TERMINAL_STATUSES, Job, JobStatus, child_id, iso, new_job_id
from jobtracker.core.errors import InvalidInput
from jobtracker.core.submission import Submission
from jobtracker.edge.stream import settle_record
from jobtracker.edge.work import handle_work_message
from jobtracker.usecases import dependencies
from jobtracker.usecases.cancel import cancel_job
from jobtracker.usecases.ports import Work
from jobtracker.usecases.query import read_job
from jobtracker.usecases.reconcile import reconcile
from jobtracker.usecases.submit import submit_job
from jobtracker.wiring import Deps
from tests.fakes import FakeGovernor, array_deps, launcher, queue, repo

W, P, S, F, T, C = (
    JobStatus.WAITING,
    JobStatus.PENDING,
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.TIMED_OUT,
    JobStatus.CANCELLED,
)
CALLER = "arn:aws:iam::1:user/u"


def launched(deps: Deps) -> list[str]:
    """The client tokens RunTask was called with, in order."""
    return [r.client_token for r in launcher(deps).requests]


def submit(deps: Deps, *after: Dependency | str, **fields: Any) -> Job:
    named = [d if isinstance(d, Dependency) else Dependency(d) for d in after]
    submission = Submission(definition="demo", depends_on=named or None, **fields)
    return submit_job(submission, caller=CALLER, deps=deps).job


def job(deps: Deps, job_id: str) -> Job:
    return repo(deps).jobs[job_id]


def drain(deps: Deps) -> None:
    """The table's stream (every write so far, through settle_record), then every FANOUT,
    RELEASE and booked LAUNCH sent (and what they write and send), until nothing is left."""
    kinds = (Work.FANOUT.value, Work.RELEASE.value)

    def due(body: dict[str, Any]) -> bool:
        return body.get("kind") in kinds or bool(body.get("booked"))

    while True:
        records, repo(deps).stream[:] = list(repo(deps).stream), []
        for old, new in records:
            settle_record(stream_record(old, new), deps)
        pending = [(i, b) for i, (_, b, _) in enumerate(queue(deps).sent) if due(b)]
        if not pending and not records:
            return
        for i, body in pending:
            queue(deps).sent[i] = ("done", {}, 0)
            handle_work_message(json.dumps(body), deps)


def stream_record(old: Job | None, new: Job) -> dict[str, Any]:
    images: dict[str, Any] = {"NewImage": job_record(new).serialize()}
    if old is not None:
        images["OldImage"] = job_record(old).serialize()
    return {"eventName": "MODIFY", "dynamodb": images}


def end(deps: Deps, job_id: str, status: JobStatus, times: int = 1, drained: bool = True) -> None:
    """The job ends `status` (as its task's STOPPED would write it), and the table's stream
    hands that record on `times` times (a redelivery)."""
    drain(deps)  # what came before, first
    stored = job(deps, job_id)
    old = stored.clone()
    stored.status, stored.finished_at = status, iso(deps.clock())
    record = stream_record(old, stored)
    for _ in range(times):
        settle_record(record, deps)
    if drained:
        drain(deps)


def running_job(deps: Deps) -> Job:
    return submit(deps)  # launched at once (STARTING): it runs until a test ends it


# ---- the rules ----------------------------------------------------------------------------------

EXPECTED = {
    Condition.SUCCEEDED: {S: Verdict.MET, F: Verdict.NEVER, T: Verdict.NEVER, C: Verdict.NEVER},
    Condition.FINISHED: {S: Verdict.MET, F: Verdict.MET, T: Verdict.MET, C: Verdict.MET},
    Condition.FAILED: {S: Verdict.NEVER, F: Verdict.MET, T: Verdict.MET, C: Verdict.NEVER},
}


@pytest.mark.parametrize(
    ("condition", "status"), list(itertools.product(Condition, sorted(TERMINAL_STATUSES)))
)
def test_every_condition_against_every_final_status(
    condition: Condition, status: JobStatus
) -> None:
    # GIVEN a condition and a final status WHEN the rule decides THEN it is the table's answer
    assert rules.verdict(condition, status) == EXPECTED[condition][status], (condition, status)


@pytest.mark.parametrize("status", [s for s in JobStatus if not s.terminal])
def test_no_condition_is_decided_before_its_job_ends(status: JobStatus) -> None:
    for condition in Condition:
        assert rules.verdict(condition, status) == Verdict.OPEN, (condition, status)


def test_a_job_no_longer_kept_meets_only_finished() -> None:
    # GIVEN a dependency whose record is gone (expired by JobRetentionDays, or never made)
    # THEN only `finished` is met: what it ended as is no longer known
    assert rules.verdict(Condition.FINISHED, None) == Verdict.MET
    assert rules.verdict(Condition.SUCCEEDED, None) == Verdict.NEVER
    assert rules.verdict(Condition.FAILED, None) == Verdict.NEVER


# ---- submission -----------------------------------------------------------------------------


def test_a_dependent_of_a_running_job_waits_and_takes_no_launch() -> None:
    # GIVEN a running job A
    deps = array_deps()
    a = running_job(deps)
    before = len(launched(deps))
    # WHEN B is submitted to run after A succeeds
    b = submit(deps, a.job_id)
    # THEN B is WAITING, says on what, is not launched, and A is marked as depended on
    assert b.status is W, b
    assert b.status_reason == f"waiting for {a.job_id} to succeed", b.status_reason
    assert len(launched(deps)) == before, "a WAITING job takes no launch"
    assert job(deps, a.job_id).has_dependents, "A's end must look for its dependents"
    assert repo(deps).edges[a.job_id] == [b.job_id], repo(deps).edges


def test_a_waiting_job_is_owed_nothing_by_the_reconciler() -> None:
    # GIVEN a WAITING job, long after it was submitted
    deps = array_deps()
    a = running_job(deps)
    b = submit(deps, a.job_id)
    deps.clock.advance(3600)  # type: ignore[attr-defined]
    # WHEN the reconciler runs THEN it reads only A, and B is still WAITING and not launched
    report = reconcile(deps)
    assert report.seen == 1, report
    assert job(deps, b.job_id).status is W and not job(deps, b.job_id).current.task_arn


def test_an_unknown_dependency_is_refused_and_nothing_is_written() -> None:
    deps = array_deps()
    with pytest.raises(InvalidInput) as refused:
        submit(deps, "job-nosuchjob")
    assert refused.value.fields[0]["field"] == "depends_on[0].job_id", refused.value.fields
    assert "no job with id 'job-nosuchjob'" in refused.value.message, refused.value.message
    assert not repo(deps).jobs and not launched(deps), "nothing written, nothing launched"


def test_a_dependency_past_the_retention_is_named_expired_not_unknown() -> None:
    # GIVEN a job id minted 40 days ago and a retention of 30 days (its record expired)
    deps = array_deps()
    deps.settings = deps.settings.__class__(**{**deps.settings.__dict__, "retention_days": 30})
    old_id = new_job_id(deps.clock() - timedelta(days=40))
    # WHEN a job names it THEN the 422 says the record expired, not that no such job was made
    with pytest.raises(InvalidInput) as refused:
        submit(deps, old_id)
    assert "expired (JobRetentionDays is 30)" in refused.value.message, refused.value.message


def test_a_job_cannot_depend_on_itself_through_a_replayed_id() -> None:
    deps = array_deps()
    a = running_job(deps)
    with pytest.raises(InvalidInput):
        dependencies.check(
            Job(a.job_id, a.spec.__class__("demo", depends_on=[{"job_id": a.job_id}]), P, "", ""),
            deps,
        )


@pytest.mark.parametrize(
    ("condition", "ended", "runs"),
    [
        (Condition.SUCCEEDED, S, True),
        (Condition.SUCCEEDED, F, False),
        (Condition.FINISHED, F, True),
        (Condition.FAILED, S, False),
        (Condition.FAILED, T, True),
    ],
)
def test_a_dependency_already_finished_decides_at_submission(
    condition: Condition, ended: JobStatus, runs: bool
) -> None:
    # GIVEN a job that ended already
    deps = array_deps()
    a = running_job(deps)
    end(deps, a.job_id, ended)
    # WHEN a job is submitted to run after it
    b = submit(deps, Dependency(a.job_id, condition))
    # THEN it is launched at once, or CANCELLED at once with no attempt launched
    if runs:
        assert b.status is JobStatus.STARTING, b
    else:
        assert b.status is C, b
        assert b.status_reason == f"dependency {a.job_id} ended {ended.value}", b.status_reason
        assert b.current.rule == "dependency" and not b.current.task_arn, b.current
    assert repo(deps).edges.get(a.job_id) == [b.job_id], "its page lists it all the same"


# ---- release and cancellation ---------------------------------------------------------------


def test_a_chain_runs_each_step_only_after_the_one_before_it_succeeds() -> None:
    # GIVEN A -> B -> C
    deps = array_deps()
    a = running_job(deps)
    b = submit(deps, a.job_id)
    c = submit(deps, b.job_id)
    # WHEN A succeeds THEN B launches and C still waits
    end(deps, a.job_id, S)
    assert job(deps, b.job_id).status is JobStatus.STARTING, job(deps, b.job_id)
    assert job(deps, c.job_id).status is W
    # WHEN B succeeds THEN C launches
    end(deps, b.job_id, S)
    assert job(deps, c.job_id).status is JobStatus.STARTING, job(deps, c.job_id)
    assert launched(deps) == [f"{x.job_id}-a1" for x in (a, b, c)], launched(deps)


def test_a_failure_cancels_its_dependents_transitively_with_no_attempt() -> None:
    # GIVEN A -> B -> C and a cleanup that runs after B whatever happens
    deps = array_deps()
    a = running_job(deps)
    b = submit(deps, a.job_id)
    c = submit(deps, b.job_id)
    cleanup = submit(deps, Dependency(b.job_id, Condition.FINISHED))
    # WHEN A fails
    end(deps, a.job_id, F)
    # THEN B is CANCELLED for A, C for B, none launched; the cleanup runs
    for dependent, cause in ((b, a), (c, b)):
        stored = job(deps, dependent.job_id)
        assert stored.status is C, stored
        assert stored.status_reason == f"dependency {cause.job_id} ended CANCELLED" or (
            stored.status_reason == f"dependency {cause.job_id} ended FAILED"
        ), stored.status_reason
        assert stored.current.rule == "dependency" and not stored.current.task_arn
    assert job(deps, b.job_id).status_reason == f"dependency {a.job_id} ended FAILED"
    assert job(deps, cleanup.job_id).status is JobStatus.STARTING, job(deps, cleanup.job_id)


def test_a_job_waits_for_the_last_of_several_dependencies() -> None:
    deps = array_deps()
    a, b = running_job(deps), running_job(deps)
    c = submit(deps, a.job_id, b.job_id)
    end(deps, b.job_id, S)
    stored = job(deps, c.job_id)
    assert stored.status is W and stored.waiting_on == {a.job_id}, stored
    assert stored.status_reason == f"waiting for {a.job_id} to succeed"
    end(deps, a.job_id, S)
    assert job(deps, c.job_id).status is JobStatus.STARTING


@pytest.mark.parametrize(
    "order", list(itertools.permutations([("a", S), ("b", S), ("c", S), ("a", S), ("b", S)]))[::7]
)
def test_duplicate_and_reordered_ends_release_once(order: tuple[tuple[str, JobStatus]]) -> None:
    # GIVEN D waiting on A, B and C
    deps = array_deps()
    named = {n: running_job(deps) for n in "abc"}
    d = submit(deps, *(j.job_id for j in named.values()))
    # WHEN their ends arrive in this order, some twice, and the reconciler sweeps between
    for n, status in order:
        stored = job(deps, named[n].job_id)
        if stored.status.terminal:  # a redelivery of the same stream record
            old = stored.clone()
            old.status = JobStatus.RUNNING
            settle_record(stream_record(old, stored), deps)
            drain(deps)
        else:
            end(deps, stored.job_id, status)
    deps.clock.now = deps.clock.now.replace(minute=0)  # type: ignore[attr-defined]
    reconcile(deps)
    # THEN D was launched exactly once
    assert launched(deps).count(f"{d.job_id}-a1") == 1, launched(deps)
    assert job(deps, d.job_id).status is JobStatus.STARTING


def test_a_dependency_that_ends_before_its_mark_is_caught_by_the_read_after_the_edges() -> None:
    # GIVEN B stored WAITING on A (as read), and A ending before B's edges and mark are written
    deps = array_deps()
    a = running_job(deps)
    b = Submission(definition="demo", depends_on=[Dependency(a.job_id)])
    from jobtracker.usecases.submit import build_job

    waiting = build_job(b, deps.settings, deps.clock(), CALLER)
    dependencies.initial(waiting, {a.job_id: JobStatus.RUNNING}, deps.clock())
    repo(deps).create(waiting)
    end(deps, a.job_id, S)  # its stream record carries no mark: it finds no dependent
    # WHEN B is wired (edges, mark, then its dependencies read again)
    dependencies.wire(job(deps, waiting.job_id).clone(), deps)
    # THEN it is released by that read
    assert job(deps, waiting.job_id).status is JobStatus.STARTING


def test_the_reconciler_catches_a_release_that_was_lost() -> None:
    # GIVEN B waiting on A, and A's end whose RELEASE message was lost
    deps = array_deps()
    a = running_job(deps)
    b = submit(deps, a.job_id)
    end(deps, a.job_id, S, drained=False)
    queue(deps).sent.clear()  # the message is lost
    assert job(deps, b.job_id).status is W
    # WHEN the reconciler runs at a sweep minute
    deps.clock.now = deps.clock.now.replace(minute=10)  # type: ignore[attr-defined]
    report = reconcile(deps)
    # THEN B is released and launched
    assert report.actions["waiting_caught"] == 1, report.actions
    assert job(deps, b.job_id).status is JobStatus.STARTING


def test_cancelling_a_waiting_job_ends_it_at_once_and_its_dependents_follow() -> None:
    deps = array_deps()
    a = running_job(deps)
    b = submit(deps, a.job_id)
    c = submit(deps, b.job_id)
    cancelled = cancel_job(b.job_id, "not needed", deps)
    assert cancelled.status is C and cancelled.status_reason == "cancelled: not needed"
    drain(deps)  # its end, from the stream
    assert job(deps, c.job_id).status is C, job(deps, c.job_id)
    end(deps, a.job_id, S)
    assert job(deps, b.job_id).status is C, "a cancelled job is never released"
    assert launched(deps) == [f"{a.job_id}-a1"], launched(deps)


def test_a_job_shows_what_it_depends_on_and_what_depends_on_it() -> None:
    deps = array_deps()
    a = running_job(deps)
    b = submit(deps, Dependency(a.job_id, Condition.FINISHED))
    read_b, read_a = read_job(b.job_id, deps), read_job(a.job_id, deps)
    assert [(d.job_id, d.condition, found.status) for d, found in read_b.dependencies if found] == [
        (a.job_id, Condition.FINISHED, JobStatus.STARTING)
    ], read_b.dependencies
    assert [j.job_id for j in read_a.dependents[0]] == [b.job_id], read_a.dependents


def test_many_dependents_are_released_a_page_per_message() -> None:
    # GIVEN 250 jobs waiting on one
    deps = array_deps()
    a = running_job(deps)
    waiting = [submit(deps, a.job_id) for _ in range(250)]
    # WHEN it succeeds
    end(deps, a.job_id, S, drained=False)
    releases = [b for _, b, _ in queue(deps).sent if b.get("kind") == Work.RELEASE.value]
    drain(deps)
    # THEN one RELEASE per record, then a page per message; every dependent launched once
    assert len(releases) == 1, releases
    assert all(job(deps, w.job_id).status is JobStatus.STARTING for w in waiting)
    assert len(set(launched(deps))) == len(launched(deps)) == 251


def test_a_page_releases_all_its_dependents_then_books_their_launches_in_one_governor_call() -> (
    None
):
    # GIVEN 100 jobs waiting on one, and a governor with a burst of 10, then 2 slots a second
    deps = array_deps()
    deps.governor = FakeGovernor(burst=10, interval=0.5)
    a = running_job(deps)
    waiting = [submit(deps, a.job_id) for _ in range(100)]
    end(deps, a.job_id, S, drained=False)
    drain_stream_only(deps)
    (first,) = [b for _, b, _ in queue(deps).sent if b.get("kind") == Work.RELEASE.value]
    handle_work_message(json.dumps(first), deps)
    (page,) = [b for _, b, _ in queue(deps).sent if b.get("dependents")]
    queue(deps).sent.clear()
    asked = deps.governor.asked
    # WHEN the page is handled
    handle_work_message(json.dumps(page), deps)
    # THEN every dependent is released (PENDING, released_at) and none launched by the page;
    # the governor was asked once; each launch is queued, booked, for its own slot's time
    assert {job(deps, w.job_id).status for w in waiting} == {JobStatus.PENDING}
    assert all(job(deps, w.job_id).released_at for w in waiting)
    assert len(launched(deps)) == 1, "only the dependency itself ran"
    assert deps.governor.asked == asked + 1, deps.governor.asked - asked
    booked = [(b["job_id"], d) for _, b, d in queue(deps).sent if b.get("booked")]
    assert [d for _, d in booked] == [0] * 9 + [max(0, (k + 2) // 2) for k in range(91)], booked


# ---- arrays ---------------------------------------------------------------------------------


def array(deps: Deps, *after: Dependency | str, **spec: Any) -> Job:
    return submit(deps, *after, array=ArraySpec(**spec))


def test_an_array_waiting_on_a_job_makes_no_child_until_it_is_released() -> None:
    deps = array_deps()
    a = running_job(deps)
    parent = array(deps, a.job_id, size=3)
    drain(deps)
    assert job(deps, parent.job_id).status is W
    assert not [j for j in repo(deps).jobs.values() if j.parent_id == parent.job_id]
    end(deps, a.job_id, S)
    kids = [j for j in repo(deps).jobs.values() if j.parent_id == parent.job_id]
    assert len(kids) == 3 and all(k.current.task_arn for k in kids), kids


def test_a_job_after_an_array_waits_on_the_parent_alone() -> None:
    # GIVEN an array of 3 and a job to run after it
    deps = array_deps()
    parent = array(deps, size=3)
    drain(deps)
    after = submit(deps, parent.job_id)
    assert job(deps, after.job_id).status is W
    # WHEN its children succeed THEN the parent's end (not each child's) releases the job
    for i in range(3):
        end(deps, child_id(parent.job_id, i), S)
    assert job(deps, parent.job_id).status is S
    assert job(deps, after.job_id).status is JobStatus.STARTING
    assert repo(deps).edges == {parent.job_id: [after.job_id]}, "no per-child bookkeeping"


def test_a_per_index_array_runs_child_i_only_after_child_i() -> None:
    # GIVEN an array A of 4, and B of 4 whose child i waits on A's child i
    deps = array_deps()
    a = array(deps, size=4)
    drain(deps)
    b = array(deps, Dependency(a.job_id, mode=Mode.PER_INDEX), size=4)
    drain(deps)
    b_kids = {i: job(deps, child_id(b.job_id, i)) for i in range(4)}
    assert all(k.status is W for k in b_kids.values()), b_kids
    # WHEN A's child 2 succeeds THEN only B's child 2 launches
    end(deps, child_id(a.job_id, 2), S)
    statuses = [job(deps, child_id(b.job_id, i)).status for i in range(4)]
    assert statuses == [W, W, JobStatus.STARTING, W], statuses
    # WHEN A's child 0 fails THEN B's child 0 is CANCELLED, never launched
    end(deps, child_id(a.job_id, 0), F)
    zero = job(deps, child_id(b.job_id, 0))
    assert zero.status is C and not zero.current.task_arn, zero


def test_per_index_needs_an_array_of_the_same_size() -> None:
    deps = array_deps()
    a = array(deps, size=4)
    with pytest.raises(InvalidInput) as refused:
        array(deps, Dependency(a.job_id, mode=Mode.PER_INDEX), size=5)
    assert refused.value.fields[0]["field"] == "depends_on[0].mode", refused.value.fields


def test_a_sequential_array_runs_one_child_at_a_time_in_order() -> None:
    deps = array_deps()
    parent = array(deps, size=4, sequential=True)
    drain(deps)
    order = []
    for i in range(4):
        kids = [j for j in repo(deps).jobs.values() if j.parent_id == parent.job_id]
        live = [k for k in kids if not k.status.terminal]
        assert [k.array_index for k in live] == [i], (i, live)
        order.append(live[0].array_index)
        end(deps, live[0].job_id, S)
    assert order == [0, 1, 2, 3] and job(deps, parent.job_id).status is S


def test_a_sequential_array_stops_at_its_first_failure_unless_it_runs_after_any_end() -> None:
    # GIVEN two sequential arrays of 3 that tolerate a failure, one on `succeeded`, one on
    # `finished`
    deps = array_deps()
    strict = array(deps, size=3, sequential=True, tolerated_failures=1)
    loose = array(
        deps, size=3, sequential=True, sequential_condition="finished", tolerated_failures=1
    )
    drain(deps)
    # WHEN child 0 of each fails
    end(deps, child_id(strict.job_id, 0), F)
    end(deps, child_id(loose.job_id, 0), F)
    # THEN the strict one's next child is CANCELLED unlaunched (and its last after it); the
    # loose one's runs
    one = job(deps, child_id(strict.job_id, 1))
    assert one.status is C and one.status_reason == (
        f"dependency {child_id(strict.job_id, 0)} ended FAILED"
    ), one
    drain(deps)
    assert job(deps, child_id(strict.job_id, 2)).status is C
    assert job(deps, child_id(loose.job_id, 1)).status is JobStatus.STARTING


def test_a_schedules_job_may_not_depend_on_other_jobs() -> None:
    from jobtracker.core.checks import Invalid
    from jobtracker.edge.api_models import scheduled_run

    tick = {
        "schedule": "nightly",
        "scheduled_time": "2026-01-01T00:00:00Z",
        "job": {"definition": "demo", "depends_on": [{"job_id": "job-x"}]},
    }
    with pytest.raises(Invalid) as refused:
        scheduled_run(tick)
    assert refused.value.field == "job", refused.value
    assert "cannot depend on other jobs" in str(refused.value), refused.value


def test_a_waiting_array_cancelled_counts_every_index_cancelled_and_makes_no_child() -> None:
    deps = array_deps()
    a = running_job(deps)
    parent = array(deps, a.job_id, size=5)
    cancelled = cancel_job(parent.job_id, None, deps)
    drain(deps)
    assert cancelled.status is C, cancelled
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].finished == {C: 5}, found
    assert not [j for j in repo(deps).jobs.values() if j.parent_id == parent.job_id]


def test_a_dependent_array_cancelled_by_its_dependency_counts_every_index_cancelled() -> None:
    deps = array_deps()
    a = running_job(deps)
    parent = array(deps, a.job_id, size=3)
    end(deps, a.job_id, F)
    stored = job(deps, parent.job_id)
    assert stored.status is C and stored.status_reason == f"dependency {a.job_id} ended FAILED"
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].finished == {C: 3}, found


class Crash(Exception):
    pass


def test_a_submission_that_crashes_before_its_edges_is_finished_by_its_retry() -> None:
    # GIVEN a POST whose handler crashes after storing the dependent, before its edges
    deps = array_deps()
    a = running_job(deps)
    real = repo(deps).add_edges
    repo(deps).add_edges = lambda *args: (_ for _ in ()).throw(Crash())  # type: ignore[method-assign]
    submission = Submission(definition="demo", depends_on=[Dependency(a.job_id)])
    with pytest.raises(Crash):
        submit_job(submission, caller=CALLER, idempotency_key="k1", deps=deps)
    repo(deps).add_edges = real  # type: ignore[method-assign]
    # WHEN the client retries with its Idempotency-Key, and A then succeeds
    replayed = submit_job(submission, caller=CALLER, idempotency_key="k1", deps=deps).job
    end(deps, a.job_id, S)
    # THEN the one dependent was wired by the retry, and released by A's end, once
    assert [j.job_id for j in repo(deps).jobs.values() if j.spec.depends_on] == [replayed.job_id]
    assert job(deps, replayed.job_id).status is JobStatus.STARTING
    assert launched(deps).count(f"{replayed.job_id}-a1") == 1, launched(deps)


def test_a_submission_that_crashes_before_its_edges_and_is_never_retried_is_caught() -> None:
    # GIVEN a dependent stored with no edges (its POST crashed), then its dependency ended
    deps = array_deps()
    a = running_job(deps)
    repo(deps).add_edges = lambda *args: (_ for _ in ()).throw(Crash())  # type: ignore[method-assign]
    with pytest.raises(Crash):
        submit(deps, a.job_id)
    end(deps, a.job_id, F)
    (orphan,) = [j for j in repo(deps).jobs.values() if j.spec.depends_on]
    assert orphan.status is W, "nothing told it"
    # WHEN the reconciler sweeps THEN it ends CANCELLED as its condition says
    deps.clock.now = deps.clock.now.replace(minute=20)  # type: ignore[attr-defined]
    reconcile(deps)
    assert job(deps, orphan.job_id).status is C, job(deps, orphan.job_id)


def test_a_per_index_child_whose_index_was_never_made_is_cancelled_when_its_source_closes() -> None:
    # GIVEN an array A of 4, one at a time, no failure tolerated, and B of 4 on it per index
    deps = array_deps()
    a = array(deps, size=4, max_running=1)
    drain(deps)
    b = array(deps, Dependency(a.job_id, mode=Mode.PER_INDEX), size=4)
    drain(deps)
    # WHEN A's child 0 fails: A fails, and its children 1-3 are never made
    end(deps, child_id(a.job_id, 0), F)
    assert job(deps, a.job_id).status is F
    assert child_id(a.job_id, 1) not in repo(deps).jobs
    # THEN every child of B ends CANCELLED at once (none waits for the reconciler), unlaunched
    kids = [job(deps, child_id(b.job_id, i)) for i in range(4)]
    assert [k.status for k in kids] == [C] * 4, [(k.status, k.status_reason) for k in kids]
    assert not any(k.current.task_arn for k in kids)
    assert job(deps, b.job_id).status is C


def test_a_release_handled_twice_repeats_its_pages_never_a_chain_of_them() -> None:
    # GIVEN 250 jobs waiting on one that ended, and its RELEASE
    deps = array_deps()
    a = running_job(deps)
    for _ in range(250):
        submit(deps, a.job_id)
    end(deps, a.job_id, S, drained=False)
    drain_stream_only(deps)
    (first,) = [b for _, b, _ in queue(deps).sent if b.get("kind") == Work.RELEASE.value]
    queue(deps).sent.clear()
    # WHEN it is handled twice (a retry), and then every page it sent, each twice too
    handle_work_message(json.dumps(first), deps)
    handle_work_message(json.dumps(first), deps)
    pages = [b for _, b, _ in queue(deps).sent if b.get("kind") == Work.RELEASE.value]
    queue(deps).sent.clear()
    for page in pages + pages:
        handle_work_message(json.dumps(page), deps)
    sent = [b for _, b, _ in queue(deps).sent]
    for launch in sent:
        handle_work_message(json.dumps(launch), deps)
    # THEN it sent its 3 pages each time, the pages sent no RELEASE of their own, each
    # dependent's launch was booked once, and every dependent was launched once
    assert [len(p["dependents"]) for p in pages] == [100, 100, 50] * 2, [len(p) for p in pages]
    assert not [b for b in sent if b.get("kind") == Work.RELEASE.value]
    assert len([b for b in sent if b.get("booked")]) == 250, len(sent)
    assert len(launched(deps)) == len(set(launched(deps))) == 251, len(launched(deps))


def drain_stream_only(deps: Deps) -> None:
    records, repo(deps).stream[:] = list(repo(deps).stream), []
    for old, new in records:
        settle_record(stream_record(old, new), deps)

"""Dependencies on moto through the real adapters: edges found by the by_dependency index, ends
handed on from stream records, releases and cancellations as guarded UpdateItems, RunTask only
for what may run: a chain, a cleanup after a failure, a dependent that can never run, per-index
arrays of 50 and a sequential array of 10."""

from __future__ import annotations

from typing import Any

from jobtracker.adapters.records import job_record
from jobtracker.core import lifecycle
from jobtracker.core.arrays import ArraySpec
from jobtracker.core.dependencies import Condition, Dependency, Mode
from jobtracker.core.domain import Job, JobStatus, child_id
from jobtracker.core.submission import Submission
from jobtracker.edge.stream import settle_record
from jobtracker.usecases.submit import submit_job
from jobtracker.wiring import Deps, default_deps
from tests.conftest import AwsEnv
from tests.helpers import run_launch_queue_work

CALLER = "arn:aws:iam::123456789012:user/u"
ENDS = {JobStatus.SUCCEEDED: lifecycle.TASK_SUCCEEDED, JobStatus.FAILED: lifecycle.FAIL}


def submit(deps: Deps, *after: Dependency, array: ArraySpec | None = None) -> Job:
    submission = Submission(definition="demo", depends_on=list(after) or None, array=array)
    return submit_job(submission, caller=CALLER, deps=deps).job


def drain(deps: Deps, queue_url: str) -> None:
    """Run every FANOUT, RELEASE and booked LAUNCH on the launch queue."""
    run_launch_queue_work(deps, queue_url, ("fanout", "release"))


def end(deps: Deps, aws: AwsEnv, job_id: str, status: JobStatus) -> None:
    """The job's task ended `status`: its guarded write, its stream record, what that sends."""
    before = deps.repo.get(job_id)
    assert before is not None, job_id
    written = deps.repo.apply(lifecycle.change(ENDS[status], job_id, deps.clock()))
    assert written.applied and written.job is not None, written
    settle_record(_record(written.job, before), deps)
    drain(deps, aws.launch_queue_url)


def _record(new: Job, old: Job) -> dict[str, Any]:
    images = {"NewImage": job_record(new).serialize(), "OldImage": job_record(old).serialize()}
    return {"eventName": "MODIFY", "dynamodb": images}


def status(deps: Deps, job_id: str) -> JobStatus:
    found = deps.repo.get(job_id)
    assert found is not None, job_id
    return found.status


def test_a_chain_runs_c_only_after_b_stopped(aws: AwsEnv) -> None:
    # GIVEN A -> B -> C
    deps = default_deps()
    a = submit(deps)
    b = submit(deps, Dependency(a.job_id))
    c = submit(deps, Dependency(b.job_id))
    assert (status(deps, b.job_id), status(deps, c.job_id)) == (JobStatus.WAITING,) * 2
    # WHEN A succeeds THEN B launches, C still waits with no task
    end(deps, aws, a.job_id, JobStatus.SUCCEEDED)
    assert status(deps, b.job_id) is JobStatus.STARTING
    assert f"{c.job_id}-a1" not in aws.runs_per_token(), aws.runs_per_token()
    # WHEN B's task stops having succeeded THEN C launches, each job once
    end(deps, aws, b.job_id, JobStatus.SUCCEEDED)
    assert status(deps, c.job_id) is JobStatus.STARTING
    runs = aws.runs_per_token()
    assert [runs.get(f"{j.job_id}-a1") for j in (a, b, c)] == [1, 1, 1], runs


def test_a_failure_runs_its_cleanup_and_cancels_what_needed_it_to_succeed(aws: AwsEnv) -> None:
    # GIVEN a job, a cleanup after it finishes, and a step that needs it to succeed
    deps = default_deps()
    a = submit(deps)
    cleanup = submit(deps, Dependency(a.job_id, Condition.FINISHED))
    step = submit(deps, Dependency(a.job_id))
    # WHEN it fails
    end(deps, aws, a.job_id, JobStatus.FAILED)
    # THEN the cleanup runs; the step ends CANCELLED naming why, with no attempt launched
    assert status(deps, cleanup.job_id) is JobStatus.STARTING
    cancelled = deps.repo.get(step.job_id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED, cancelled
    assert cancelled.status_reason == f"dependency {a.job_id} ended FAILED"
    assert cancelled.current.rule == "dependency" and cancelled.current.task_arn is None
    assert f"{step.job_id}-a1" not in aws.runs_per_token(), "never launched"


def test_the_dependents_index_pages_every_dependent_once(aws: AwsEnv) -> None:
    # GIVEN 30 jobs waiting on one (their edges over the index's shards)
    deps = default_deps()
    a = submit(deps)
    waiting = {submit(deps, Dependency(a.job_id)).job_id for _ in range(30)}
    # WHEN the dependents are read 7 at a time
    found: list[str] = []
    token = None
    for _ in range(10):
        page, token = deps.repo.dependents(a.job_id, 7, token)
        found += page
        if token is None:
            break
    # THEN each is found once
    assert sorted(found) == sorted(waiting), (len(found), len(waiting))


def test_per_index_arrays_of_50_run_child_i_only_after_child_i(aws: AwsEnv) -> None:
    # GIVEN arrays A and B of 50, B's child i waiting on A's child i
    deps = default_deps()
    a = submit(deps, array=ArraySpec(size=50))
    drain(deps, aws.launch_queue_url)
    b = submit(deps, Dependency(a.job_id, mode=Mode.PER_INDEX), array=ArraySpec(size=50))
    drain(deps, aws.launch_queue_url)
    assert {k.status for k in deps.repo.children(b.job_id, range(50))} == {JobStatus.WAITING}
    # WHEN A's children succeed, last index first
    for i in reversed(range(50)):
        end(deps, aws, child_id(a.job_id, i), JobStatus.SUCCEEDED)
        # THEN B's child i is launched just then, and B's child i-1 still waits
        assert status(deps, child_id(b.job_id, i)) is JobStatus.STARTING, i
        if i:
            assert status(deps, child_id(b.job_id, i - 1)) is JobStatus.WAITING, i
    runs = aws.runs_per_token()
    assert all(runs.get(f"{child_id(b.job_id, i)}-a1") == 1 for i in range(50)), runs


def test_a_sequential_array_of_10_runs_one_at_a_time_in_order(aws: AwsEnv) -> None:
    deps = default_deps()
    parent = submit(deps, array=ArraySpec(size=10, sequential=True))
    drain(deps, aws.launch_queue_url)
    for i in range(10):
        kids = deps.repo.children(parent.job_id, range(10), consistent=True)
        live = [k.array_index for k in kids if not k.status.terminal]
        assert live == [i], (i, live)
        end(deps, aws, child_id(parent.job_id, i), JobStatus.SUCCEEDED)
    assert status(deps, parent.job_id) is JobStatus.SUCCEEDED


def test_waiting_jobs_list_under_their_own_status_and_not_among_the_active(aws: AwsEnv) -> None:
    # GIVEN a running job and one waiting on it
    deps = default_deps()
    a = submit(deps)
    b = submit(deps, Dependency(a.job_id))
    # WHEN the jobs are listed by status, and the reconciler's sets read
    waiting, _ = deps.repo.list_jobs("WAITING", None, None, 50, None)
    starting, _ = deps.repo.list_jobs("STARTING", None, None, 50, None)
    # THEN the waiting one is listed as WAITING only, and read by the sweep, not every minute
    assert [j.job_id for j in waiting] == [b.job_id], waiting
    assert [j.job_id for j in starting] == [a.job_id], starting
    assert [j.job_id for j in deps.repo.active_jobs()] == [a.job_id]
    assert [j.job_id for j in deps.repo.waiting_jobs()] == [b.job_id]

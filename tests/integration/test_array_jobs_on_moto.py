"""An array on moto through the real adapters: the parent and its counters stored, children
made by id and launched by RunTask, each child's end settled from a stream record, the lists
keeping children apart, and the parent's status written once every child ended."""

from __future__ import annotations

from typing import Any

from jobtracker.adapters.records import item_size, job_record
from jobtracker.core import lifecycle
from jobtracker.core.arrays import ArraySpec
from jobtracker.core.domain import Job, JobStatus
from jobtracker.core.submission import Submission
from jobtracker.edge.stream import settle_record
from jobtracker.usecases.submit import submit_job
from jobtracker.wiring import Deps, default_deps
from tests.conftest import AwsEnv
from tests.helpers import run_launch_queue_work


def drain_fanouts(deps: Deps, queue_url: str) -> int:
    """Run every FANOUT on the launch queue, and the launches it books; how many FANOUTs ran."""
    return run_launch_queue_work(deps, queue_url, ("fanout",))


def stream_record(new: Job, old: Job) -> dict[str, Any]:
    """The table stream's record of a job's change (NEW_AND_OLD_IMAGES)."""
    return {
        "eventName": "MODIFY",
        "dynamodb": {
            "NewImage": job_record(new).serialize(),
            "OldImage": job_record(old).serialize(),
        },
    }


def succeed(deps: Deps, child: Job) -> None:
    """The child's task succeeded: its guarded write, then its stream record settled."""
    move = lifecycle.change(lifecycle.TASK_SUCCEEDED, child.job_id, deps.clock())
    written = deps.repo.apply(move)
    assert written.applied and written.job is not None, written
    settle_record(stream_record(written.job, child), deps)


def test_an_array_runs_on_moto_within_its_window_and_succeeds(aws: AwsEnv) -> None:
    # GIVEN an array of 5, at most 2 at once
    deps = default_deps()
    parent = submit_job(
        Submission(definition="demo", array=ArraySpec(size=5, max_running=2)),
        caller="arn:aws:iam::123456789012:user/u",
        deps=deps,
    ).job
    # THEN the parent's item stays small
    assert item_size(job_record(parent).serialize()) < 1024
    # WHEN its fan-out runs and each running child succeeds in turn
    most = 0
    for _ in range(10):
        drain_fanouts(deps, aws.launch_queue_url)
        kids = deps.repo.children(parent.job_id, range(5), consistent=True)
        live = [k for k in kids if not k.status.terminal]
        most = max(most, len(live))
        if not live:
            break
        succeed(deps, live[0])
    # THEN every index ran once, at most 2 at once, and the parent SUCCEEDED
    runs = aws.runs_per_token()
    assert len(runs) == 5 and set(runs.values()) == {1}, runs
    assert most == 2, most
    done = deps.repo.get(parent.job_id)
    assert done is not None and done.status is JobStatus.SUCCEEDED, done
    found = deps.arrays.read(parent.job_id)
    assert found is not None and found[1].finished == {JobStatus.SUCCEEDED: 5}, found


def test_lists_keep_children_apart_unless_asked(aws: AwsEnv) -> None:
    # GIVEN an array of 3 whose children are launched, and a plain job
    deps = default_deps()
    caller = "arn:aws:iam::123456789012:user/u"
    parent = submit_job(
        Submission(definition="demo", array=ArraySpec(size=3)), caller=caller, deps=deps
    ).job
    plain = submit_job(Submission(definition="demo"), caller=caller, deps=deps).job
    drain_fanouts(deps, aws.launch_queue_url)
    # WHEN the jobs are listed
    top, _ = deps.repo.list_jobs(None, None, None, 50, None)
    every, _ = deps.repo.list_jobs(None, None, None, 50, None, True)
    starting, _ = deps.repo.list_jobs("STARTING", None, None, 50, None)
    starting_too, _ = deps.repo.list_jobs("STARTING", None, None, 50, None, True)
    # THEN the parent and the plain job are listed, children only when asked for
    assert {j.job_id for j in top} == {parent.job_id, plain.job_id}, [j.job_id for j in top]
    assert len(every) == 5, [j.job_id for j in every]
    assert [j.job_id for j in starting] == [plain.job_id], [j.job_id for j in starting]
    assert len(starting_too) == 4
    # AND the reconciler sees every unfinished job, children included
    assert len(list(deps.repo.active_jobs())) == 5


def test_a_child_run_again_is_kept_again_past_its_retention(aws: AwsEnv) -> None:
    from datetime import timedelta

    from jobtracker.adapters.models import JobRecord
    from jobtracker.adapters.store import DynamoJobRepository
    from jobtracker.usecases.arrays import new_child

    # GIVEN a child that ended FAILED, its item set to expire after the retention
    deps = default_deps()
    repo = DynamoJobRepository(aws.table, retention_days=30)
    parent = submit_job(
        Submission(definition="demo", array=ArraySpec(size=2)), caller="u", deps=deps
    ).job
    child = new_child(parent, 0, deps.clock())
    repo.create(child)
    failed = repo.apply(lifecycle.change(lifecycle.FAIL, child.job_id, deps.clock()))
    assert failed.applied and JobRecord.get(child.job_id).expires is not None
    # WHEN its array's retry round runs it again
    assert failed.job is not None
    hold = deps.clock() + timedelta(minutes=15)
    again = lifecycle.child_retried(failed.job, "run again", deps.clock(), hold)
    assert again is not None
    written = repo.apply(again)
    # THEN it is PENDING on a new attempt, its first archived, and it no longer expires
    assert written.applied and written.job is not None, written
    assert (written.job.status, written.job.attempt) == (JobStatus.PENDING, 2)
    assert JobRecord.get(child.job_id).expires is None, "a job running again must be kept"
    kept = repo.get(child.job_id, full=True)
    assert kept is not None and sorted(kept.attempts) == [1, 2]

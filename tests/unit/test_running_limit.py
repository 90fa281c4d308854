"""Unit: a job definition's running limit (max_running): at most that many of its jobs have a
task at once; the others wait PENDING, visibly, and launch as slots free."""

from __future__ import annotations

import json

from jobtracker.adapters.launcher import LaunchResult
from jobtracker.core.domain import JobStatus, LaunchFailure
from jobtracker.core.submission import Submission
from jobtracker.edge.task_events import handle_task_event
from jobtracker.usecases.launch import handle_launch_message
from jobtracker.usecases.ports import MemoryRunningLimits
from jobtracker.usecases.reconcile import reconcile
from jobtracker.usecases.submit import submit_job
from jobtracker.wiring import Deps
from tests.fakes import DEFINITIONS, FakeClock, FakeLauncher, FakeQueue, fake_deps
from tests.helpers import ecs_event

LIMIT = 2


def limited_deps() -> Deps:
    definitions = json.loads(DEFINITIONS)
    definitions["limited"] = {**definitions["demo"], "max_running": LIMIT}
    return fake_deps(JOB_DEFINITIONS=json.dumps(definitions))


def submit(deps: Deps, definition: str = "limited") -> str:
    return submit_job(Submission(definition=definition), "me", None, deps).job.job_id


def held(deps: Deps) -> set[str]:
    assert isinstance(deps.limits, MemoryRunningLimits)
    return deps.limits.holders("limited")


def test_jobs_past_the_running_limit_wait_pending_with_the_reason() -> None:
    # GIVEN a definition that runs at most 2 jobs at once
    deps = limited_deps()
    launcher = deps.launcher
    assert isinstance(launcher, FakeLauncher)
    # WHEN three of its jobs are submitted
    ids = [submit(deps) for _ in range(3)]
    # THEN two launch, the third waits PENDING and says why
    jobs = [deps.repo.get(i) for i in ids]
    assert [j.status for j in jobs if j] == [
        JobStatus.STARTING,
        JobStatus.STARTING,
        JobStatus.PENDING,
    ]
    waiting = jobs[2]
    assert waiting is not None and waiting.status_reason == (
        "waiting for launch capacity: definition 'limited' at its running limit 2"
    ), waiting.status_reason
    assert len(launcher.requests) == 2, "no RunTask for the job past the limit"
    assert held(deps) == {f"{ids[0]}#1", f"{ids[1]}#1"}


def test_a_waiting_job_launches_once_a_running_one_stops() -> None:
    # GIVEN two running jobs of a limited definition and a third waiting
    deps = limited_deps()
    clock = deps.clock
    assert isinstance(clock, FakeClock)
    first, second, third = (submit(deps) for _ in range(3))
    job = deps.repo.get(first)
    assert job is not None
    # WHEN the first one's task stops and the third one's launch comes due
    stopped = ecs_event("task_stopped_success", first, task_arn=job.current.task_arn)
    assert handle_task_event(stopped, deps).value == "applied"
    clock.advance(60)
    # THEN the third launches into the freed slot
    assert handle_launch_message(third, 1, deps) == "launched"
    assert held(deps) == {f"{second}#1", f"{third}#1"}


def test_a_redelivered_stopped_event_frees_nothing_more() -> None:
    # GIVEN a limited job that stopped, and another that took the freed slot
    deps = limited_deps()
    first, second = submit(deps), submit(deps)
    job = deps.repo.get(first)
    assert job is not None
    stopped = ecs_event("task_stopped_success", first, task_arn=job.current.task_arn)
    handle_task_event(stopped, deps)
    third = submit(deps)
    # WHEN the first one's STOPPED is delivered again
    assert handle_task_event(stopped, deps).value == "duplicate"
    # THEN the slots held are still the two running jobs'
    assert held(deps) == {f"{second}#1", f"{third}#1"}


def test_a_launch_that_fails_gives_its_slot_back() -> None:
    # GIVEN a limited definition whose RunTask fails
    from jobtracker.adapters.launcher import LaunchResult
    from jobtracker.core.domain import LaunchFailure

    deps = limited_deps()
    launcher = deps.launcher
    assert isinstance(launcher, FakeLauncher)
    launcher.fail_with = LaunchResult(error="RESOURCE:MEMORY", failure=LaunchFailure.WAIT)
    # WHEN a job is submitted
    submit(deps)
    # THEN no slot stays taken by an attempt with no task
    assert held(deps) == set()


def test_a_definition_without_a_limit_takes_no_slot() -> None:
    # GIVEN the default definition (no max_running) WHEN five jobs are submitted
    deps = limited_deps()
    for _ in range(5):
        submit(deps, "demo")
    # THEN all launched and no slot was counted
    assert isinstance(deps.limits, MemoryRunningLimits) and deps.limits.held == {}
    assert isinstance(deps.launcher, FakeLauncher) and len(deps.launcher.requests) == 5


def test_the_reconciler_frees_a_slot_no_unfinished_job_holds() -> None:
    # GIVEN a slot left taken by an attempt of a job that is gone (a crash before its release)
    deps = limited_deps()
    running = submit(deps)
    assert isinstance(deps.limits, MemoryRunningLimits)
    deps.limits.acquire("limited", "job-gone#1", LIMIT)
    # WHEN the reconciler runs
    report = reconcile(deps)
    # THEN the leaked slot is freed and the running job keeps its own
    assert held(deps) == {f"{running}#1"}
    assert report.actions["running_slots_freed"] == 1, report.actions


def test_a_waiting_job_asks_again_within_thirty_seconds() -> None:
    # GIVEN a full limited definition (production waits: backoff scale 1)
    deps = limited_deps()
    queue = deps.queue
    assert isinstance(queue, FakeQueue)
    ids = [submit(deps) for _ in range(LIMIT + 1)]
    # WHEN the waiting job is refused again and again
    for _ in range(6):
        handle_launch_message(ids[-1], 1, deps)
        assert isinstance(deps.clock, FakeClock)
        deps.clock.advance(60)
    # THEN its next try is never more than 30 s away (slots free as tasks stop)
    delays = [delay for _, body, delay in queue.sent if body.get("kind") == "launch"]
    assert delays and max(delays) <= 30, delays


def test_a_job_that_waited_long_for_a_slot_still_retries_a_transient_launch_error() -> None:
    # GIVEN a limited definition full of running jobs, and a third that waited for a slot more
    # times than a transient RunTask error may be retried
    deps = limited_deps()
    clock, launcher = deps.clock, deps.launcher
    assert isinstance(clock, FakeClock) and isinstance(launcher, FakeLauncher)
    first, _, third = (submit(deps) for _ in range(3))
    for _ in range(deps.settings.max_launch_failures + 2):
        clock.advance(60)
        assert handle_launch_message(third, 1, deps) == "launched"  # tried, and waited again
    # WHEN a slot frees and its launch meets one transient service error
    job = deps.repo.get(first)
    assert job is not None
    stopped = ecs_event("task_stopped_success", first, task_arn=job.current.task_arn)
    assert handle_task_event(stopped, deps).value == "applied"
    launcher.fail_with = LaunchResult(error="ServerException: oops", failure=LaunchFailure.RETRY)
    clock.advance(60)
    handle_launch_message(third, 1, deps)
    # THEN it is still PENDING, to be tried again, not FAILED for having waited
    waiting = deps.repo.get(third)
    assert waiting is not None
    assert waiting.status == JobStatus.PENDING, f"{waiting.status}: {waiting.status_reason}"
    assert waiting.launch_failures == 1, "one transient error counted"
    tries = 1 + deps.settings.max_launch_failures + 2  # at submission, then each message
    assert waiting.launch_waits == tries, "each wait counted"
    # AND the next try launches it
    launcher.fail_with = None
    clock.advance(60)
    assert handle_launch_message(third, 1, deps) == "launched"
    launched = deps.repo.get(third)
    assert launched is not None and launched.status == JobStatus.STARTING

"""Unit: timeouts and start deadlines are enforced the second they fall due, by a timer on the
deadline queue (usecases/deadlines.py), clock-driven (fakes, no AWS, no waiting)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from jobtracker.core.domain import Job, JobStatus, StopRequest, iso, parse_iso
from jobtracker.core.submission import Submission
from jobtracker.edge.task_events import handle_task_event
from jobtracker.edge.work import handle_work_message
from jobtracker.usecases.submit import submit_job
from jobtracker.wiring import Deps
from tests.fakes import FakeClock, FakeLauncher, FakeQueue, FakeRepo, fake_deps
from tests.helpers import ecs_event

DEADLINES = "https://sqs/deadline"


@dataclass
class TimerQueue(FakeQueue):
    """Keeps when each message becomes visible (sent at the clock's time plus its delay), as SQS
    does; `down` makes every send fail."""

    clock: FakeClock = field(default_factory=FakeClock)
    due: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    down: bool = False

    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> None:
        if self.down:
            raise RuntimeError("SQS is down")
        super().send(queue_url, body, delay_seconds)
        if queue_url == DEADLINES:
            self.due.append((self.clock() + timedelta(seconds=delay_seconds), body))


def timer_deps() -> tuple[Deps, TimerQueue, FakeLauncher, FakeClock]:
    base = fake_deps()
    assert isinstance(base.clock, FakeClock)
    queue = TimerQueue(clock=base.clock)
    launcher = FakeLauncher()
    deps = Deps(FakeRepo(), launcher, queue, base.settings, base.clock, base.rand)
    return deps, queue, launcher, base.clock


def deliver_timers(deps: Deps, queue: TimerQueue, clock: FakeClock, until: datetime) -> list[str]:
    """Hand each timer to retry_decider's logic the moment it becomes visible, in order, up to
    `until`; what each did."""
    done = []
    while queue.due:
        queue.due.sort(key=lambda d: d[0])
        at, body = queue.due[0]
        if at > until:
            break
        queue.due.pop(0)
        clock.now = max(clock.now, at)
        done.append(handle_work_message(json.dumps(body), deps))
    return done


def submitted(deps: Deps, **spec: Any) -> Job:
    return submit_job(Submission(definition="demo", **spec), "me", None, deps).job


def started(deps: Deps, job: Job, after: float) -> datetime:
    """Its task reaches RUNNING `after` seconds from now; when that is."""
    assert isinstance(deps.clock, FakeClock)
    deps.clock.advance(after)
    event = ecs_event("task_running", job.job_id, task_arn=job.current.task_arn)
    event["detail"]["startedAt"] = iso(deps.clock())
    handle_task_event(event, deps)
    return deps.clock()


def stored(deps: Deps, job: Job) -> Job:
    found = deps.repo.get(job.job_id)
    assert found is not None
    return found


@pytest.mark.parametrize("timeout", [3, 10, 20 * 60])
def test_a_run_timeout_is_enforced_the_second_it_falls_due(timeout: int) -> None:
    # GIVEN a job with a run timeout, launched, whose task starts 2 s later
    deps, queue, launcher, clock = timer_deps()
    job = submitted(deps, timeout_seconds=timeout)
    began = started(deps, job, after=2)
    # WHEN its timers come as SQS hands them over
    deliver_timers(deps, queue, clock, until=began + timedelta(seconds=timeout + 60))
    # THEN the stop was asked the second the timeout fell due, from its start, and ECS told
    after = stored(deps, job)
    assert after.stop_request == StopRequest.TIMEOUT, after.stop_request
    asked = parse_iso(after.stop_requested_at)
    assert asked == began + timedelta(seconds=timeout), f"asked at {asked}, due {timeout}s in"
    assert launcher.stopped == [(job.current.task_arn, "jobtracker: timeout")]


def test_a_deadline_past_sqs_delay_cap_takes_hops_of_at_most_15_minutes() -> None:
    # GIVEN a job with a 20-minute timeout whose task starts 2 s after launch
    deps, queue, _, clock = timer_deps()
    job = submitted(deps, timeout_seconds=20 * 60)
    began = started(deps, job, after=2)
    # WHEN its timers come
    deliver_timers(deps, queue, clock, until=began + timedelta(hours=1))
    # THEN each hop was within SQS's cap, and there were only as many as the wait needed
    delays = [d for url, _, d in queue.sent if url == DEADLINES]
    assert delays == [900, 302], delays


def test_an_explicit_start_deadline_stops_a_task_that_never_starts() -> None:
    # GIVEN a job that must start within 30 s, whose task stays PROVISIONING
    deps, queue, launcher, clock = timer_deps()
    job = submitted(deps, start_timeout_seconds=30)
    launched = clock()
    # WHEN its timer comes
    done = deliver_timers(deps, queue, clock, until=launched + timedelta(minutes=5))
    # THEN the start deadline was enforced at 30 s, for the retry policy to decide
    after = stored(deps, job)
    assert done == ["start_deadline"], done
    assert after.stop_request == StopRequest.START_TIMEOUT
    assert parse_iso(after.stop_requested_at) == launched + timedelta(seconds=30)
    assert launcher.stopped == [(job.current.task_arn, "jobtracker: start deadline exceeded")]


def test_a_job_with_no_deadline_of_its_own_gets_no_timer() -> None:
    # GIVEN a job with neither a timeout nor a start deadline (the deployment's default start
    # deadline is the reconciler's)
    deps, queue, _, _ = timer_deps()
    # WHEN it is launched
    submitted(deps)
    # THEN nothing was sent to the deadline queue
    assert [url for url, _, _ in queue.sent if url == DEADLINES] == []


def test_a_timer_after_the_task_ended_on_its_own_changes_nothing() -> None:
    # GIVEN a job with a 3 s timeout whose task started and succeeded within it
    deps, queue, launcher, clock = timer_deps()
    job = submitted(deps, timeout_seconds=3)
    started(deps, job, after=1)
    clock.advance(1)
    handle_task_event(
        ecs_event("task_stopped_success", job.job_id, task_arn=job.current.task_arn), deps
    )
    # WHEN its timer comes
    done = deliver_timers(deps, queue, clock, until=clock() + timedelta(minutes=1))
    # THEN it found nothing due: no stop asked, ECS not called, the job still SUCCEEDED
    assert "timeout" not in done, done
    assert launcher.stopped == [], launcher.stopped
    assert stored(deps, job).status == JobStatus.SUCCEEDED


def test_a_timer_of_an_earlier_attempt_is_dropped() -> None:
    # GIVEN a job whose first attempt failed (exit 2) and was retried
    deps, queue, launcher, clock = timer_deps()
    job = submitted(deps, timeout_seconds=600)
    started(deps, job, after=1)
    arn = job.current.task_arn
    handle_task_event(ecs_event("task_stopped_exit_2", job.job_id, task_arn=arn), deps)
    (decide,) = [b for url, b, _ in queue.sent if url == deps.settings.retry_queue_url]
    handle_work_message(json.dumps(decide), deps)
    assert stored(deps, job).attempt == 2, "the policy retries exit 2"
    # WHEN the first attempt's timer comes, after its timeout
    clock.advance(3600)
    done = handle_work_message(
        json.dumps({"kind": "deadline", "job_id": job.job_id, "attempt": 1}), deps
    )
    # THEN it is dropped: no stop for an attempt that is over
    assert done == "moved-on" and launcher.stopped == [], (done, launcher.stopped)


def test_a_timer_that_cannot_be_sent_leaves_the_launch_recorded() -> None:
    # GIVEN SQS down when a job with a timeout is launched
    deps, queue, _, _ = timer_deps()
    queue.down = True
    # WHEN it is submitted
    job = submitted(deps, timeout_seconds=3)
    # THEN its launch is recorded all the same (the reconciler enforces the timeout)
    after = stored(deps, job)
    assert after.status == JobStatus.STARTING and after.current.task_arn, after.status


def timed_out_then(stopped: str) -> Job:
    """A job with a 3 s timeout whose timer asked the stop, then its task's STOPPED event."""
    deps, queue, _, clock = timer_deps()
    job = submitted(deps, timeout_seconds=3)
    started(deps, job, after=1)
    deliver_timers(deps, queue, clock, until=clock() + timedelta(seconds=10))
    assert stored(deps, job).stop_request == StopRequest.TIMEOUT, "the timer asked the stop"
    event = ecs_event(stopped, job.job_id, task_arn=job.current.task_arn)
    handle_task_event(event, deps)
    return stored(deps, job)


def test_a_task_our_stop_ended_times_the_job_out() -> None:
    # GIVEN a timed-out attempt WHEN its task's STOPPED says StopTask ended it (UserInitiated)
    job = timed_out_then("task_stopped_user_initiated")
    # THEN the job is TIMED_OUT
    assert job.status == JobStatus.TIMED_OUT, job.status


def test_a_task_that_failed_on_its_own_before_our_stop_keeps_its_own_outcome() -> None:
    # GIVEN a timed-out attempt WHEN its task's STOPPED says it exited 1 on its own
    # (EssentialContainerExited: it ended before the stop reached it)
    job = timed_out_then("task_stopped_exit_1")
    # THEN the timeout changed nothing: the attempt failed, for the retry policy to decide
    assert job.status != JobStatus.TIMED_OUT, job.status
    assert job.current.awaiting_decision, "handed to the retry policy, as any failure"

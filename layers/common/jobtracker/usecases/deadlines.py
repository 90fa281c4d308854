"""Deadlines to the second: an attempt's run timeout and start deadline are enforced by a timer,
a message on the deadline queue delayed until the first of them falls due. No scan and no
per-job poller: one message per attempt, which moves itself on until there is nothing left to
enforce.

- Armed when an attempt is launched (`launch_attempt`, so every launcher arms it).
- The message names the job and its attempt, not a deadline: when it comes, `lifecycle.deadlines`
  (the one rule, the reconciler's too) says what the attempt owes now. Past due: stopped, as
  the reconciler would (`enforce`). Due later (its task started, so the run timeout counts from
  then; or the deadline is further off than SQS's 15-minute delay): sent again, delayed until
  then. Nothing left (the attempt ended, moved on, or a stop is already asked): dropped.
- A timer lost to a crash between RunTask and its send, or a delivery that failed, costs only
  precision: the reconciler enforces every deadline within its minute anyway.

Cost: one SendMessage per attempt, and one more once its task starts when it has a run timeout
(or every 15 minutes it waits); Lambda receives and deletes them in batches. A job with no
deadline of its own (no timeout_seconds, no start_timeout_seconds) gets no timer: the
deployment's default start deadline is the reconciler's (lifecycle.TIMED says why).
"""

from __future__ import annotations

import math

from jobtracker.adapters.queue import MAX_DELAY_SECONDS
from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, StopRequest
from jobtracker.core.lifecycle import Due
from jobtracker.observability import count, logger
from jobtracker.usecases.cancel import cluster_of
from jobtracker.usecases.ports import Work, work_message
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps


def arm(job: Job, deps: Deps) -> bool:
    """Send the attempt's timer, delayed until its first timed deadline; False when it has none
    (or there is no deadline queue: then the reconciler alone enforces, to the minute). Never
    raises: a timer that could not be sent leaves its deadlines to the reconciler."""
    found = lifecycle.next_timed(job, deps.settings)
    url = deps.settings.deadline_queue_url
    if found is None or not url:
        return False
    _, at = found
    delay = max(0, math.ceil((at - deps.clock()).total_seconds()))
    try:
        deps.queue.send(
            url,
            work_message(Work.DEADLINE, job.job_id, job.attempt),
            delay_seconds=min(MAX_DELAY_SECONDS, delay),
        )
    except Exception:
        logger.exception(
            "arming a deadline failed; the reconciler enforces it", extra={"job_id": job.job_id}
        )
        count("DeadlinesUnarmed")
        return False
    return True


def on_timer(job_id: str, attempt: int, deps: Deps | None = None) -> str:
    """A timer came: enforce what is due, move the timer on, or drop it. Returns what it did."""
    deps = deps or default_deps()
    job = deps.repo.get(job_id)
    if job is None or job.attempt != attempt:
        return "moved-on"
    found = lifecycle.next_timed(job, deps.settings)
    if found is None:
        return "nothing-due"
    due, at = found
    if at > deps.clock():
        arm(job, deps)
        return "rearmed"
    enforce(due, job, deps)
    count("DeadlinesEnforced")
    return due.value


def enforce(due: Due, job: Job, deps: Deps) -> None:
    """Stop the attempt for a passed timeout or start deadline: the stop is asked on the job
    first (so its STOPPED event ends it the right way), then of ECS."""
    request = StopRequest.TIMEOUT if due == Due.TIMEOUT else StopRequest.START_TIMEOUT

    def stop(j: Job | None) -> tuple[lifecycle.Change | None, str | None]:
        assert j is not None
        asked = lifecycle.request_stop(j, job.attempt, request, deps.clock())
        return asked, j.current.task_arn if asked else None

    stored, arn, _ = write(deps, job.job_id, stop, known=job)
    if stored is not None and arn:
        deps.launcher.stop_task(cluster_of(deps, stored, arn), arn, lifecycle.STOP_REASONS[request])
        count("StopTaskCalls")

"""The reconciler (every minute): no job ever goes quiet.

ECS has no task timeout, forgets stopped tasks after about an hour and can lose the STOPPED
event of a dead host; a message on a queue can be lost to a crash. Every job not yet finished is
read from the `by_status` index's ACTIVE shards (never a scan), and `lifecycle.deadlines` says
what each one is owed:

- a failed attempt whose hand-off to retry_decider went missing: handed off again;
- PENDING past not_before with no task: launched again (the clientToken keeps it single);
- past timeout_seconds: StopTask, the job ends TIMED_OUT; past the start deadline: StopTask,
  the retry policy decides (rule start-deadline);
- WAITING (blocked on dependencies), every WAITING_SWEEP_MINUTES: its open dependencies read
  again, so a release lost to a crash is caught (usecases/dependencies.py);
- no news for quiet_after_seconds: DescribeTasks in batches (once per quiet period) and apply
  what ECS says through the same guarded path as events; a task ECS no longer knows is marked
  lost (rule task-lost); a stop we asked for with no STOPPED yet is asked again.

It also gives back the slots of running limits (`max_running`) that no unfinished job's current
attempt holds: a handler that crashed between a task's STOPPED and giving its slot back, a job
that ended some other way. The holders are read before the jobs, so an attempt that took a slot
after the read is never taken for a leak.

When acting on a job fails, the failure is logged and counted (ReconcilerErrors) and the job is
backed off: its failures are counted on the job item itself (durable across runs), and
`lifecycle.reconcile_backoff_until` says when it may be tried again (2, 4, 8 ... minutes, capped
at an hour); until then nothing is due (`lifecycle.deadlines`) and it is counted as backed off
(ReconcilerBackedOff). Other jobs go on. The job moving on, or a run that does not fail on it,
ends the backoff. Events never read it.

Safe to run twice at once or after a crash: every write is guarded, StopTask is idempotent and
RunTask carries the attempt's clientToken. It writes nothing for a job that needs nothing, and
nothing more for a backoff than one small write when it fails and one when it recovers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from jobtracker.adapters.launcher import Describe, DescribedTask
from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, StopRequest, TaskState, iso
from jobtracker.core.lifecycle import Due
from jobtracker.observability import count, logger
from jobtracker.usecases.arrays import hand_off
from jobtracker.usecases.cancel import cluster_of
from jobtracker.usecases.deadlines import enforce
from jobtracker.usecases.dependencies import WAITING_SWEEP_MINUTES, sweep
from jobtracker.usecases.launch import launch_attempt
from jobtracker.usecases.track import EventResult, apply_state, hand_to_decider
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps

RUN_INTERVAL_SECONDS = 60  # the schedule in template.yaml
# What a quiet job is owed once per quiet period, not on every run.
PERIODIC = frozenset({Due.LOOK, Due.TEND})


def plan(job: Job, now: datetime, deps: Deps, booked_until: datetime | None = None) -> list[Due]:
    """What the reconciler does for one job now (pure): the first deadline passed, in the order
    of Due; a quiet job is looked at once per quiet period, not on every run. `booked_until`:
    the governor's latest booked launch slot (a PENDING job may be waiting for one)."""
    deadlines = lifecycle.deadlines(job, deps.settings, booked_until)
    for due in Due:
        at = deadlines.get(due)
        if at is None or at > now:
            continue
        if due not in PERIODIC:
            return [due]
        since = (now - at).total_seconds() % deps.settings.quiet_after_seconds
        return [due] if since < RUN_INTERVAL_SECONDS else []
    return []


@dataclass
class Report:
    seen: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    backed_off: int = 0  # jobs left alone this run: the reconciler failed on them lately

    def failed(self, message: str, **where: str) -> None:
        """One failure, logged with its traceback and counted (the ReconcilerErrors alarm)."""
        self.errors += 1
        count("ReconcilerErrors")
        logger.exception(message, extra=where)


def reconcile(deps: Deps | None = None) -> Report:
    deps = deps or default_deps()
    now = deps.clock()
    report = Report()
    to_describe: dict[str, list[Job]] = defaultdict(list)
    recovering: list[Job] = []  # backed off before and reached now: their backoff ends...
    unfinished: set[str] = set()  # ...unless DescribeTasks left them here unfinished
    held = _running_slots(deps)
    booked = deps.governor.booked_until()
    booked_until = None if booked is None else datetime.fromtimestamp(booked, UTC)
    current: set[str] = set()  # the slots unfinished jobs' current attempts may hold
    for job in deps.repo.active_jobs():
        report.seen += 1
        current.add(lifecycle.running_slot(job.job_id, job.attempt))
        until = lifecycle.reconcile_backoff_until(job, deps.settings)
        if until is not None and until > now:
            report.backed_off += 1  # nothing is due before then (lifecycle.deadlines)
            continue
        try:
            for due in plan(job, now, deps, booked_until):
                report.actions[due.value] += 1
                _act(due, job, deps, to_describe)
        except Exception:
            report.failed("reconciling a job failed", job_id=job.job_id)
            _back_off(job, now, deps)
            continue
        if job.reconcile_failures:
            recovering.append(job)
    for cluster, jobs in to_describe.items():
        unfinished |= _describe_and_apply(cluster, jobs, now, deps, report)
    for job in recovering:
        if job.job_id not in unfinished:
            _recovered(job, now, deps)
    for definition, holders in held.items():
        leaked = holders - current
        if leaked:
            deps.limits.release(definition, *sorted(leaked))
            report.actions["running_slots_freed"] += len(leaked)
    if now.minute % WAITING_SWEEP_MINUTES == 0:
        # WAITING jobs are not in the ACTIVE shards: they are owed nothing until a dependency
        # ends, and the release that ends their wait is checked here now and then.
        moved = sweep(deps.repo.waiting_jobs(), deps)
        if moved:
            report.actions["waiting_caught"] += moved
    for name, n in report.actions.items():
        count(f"Reconciler{name.title().replace('_', '')}", n)
    if report.backed_off:
        # Beside ReconcilerErrors: a few jobs backed off run after run is a poison job; errors
        # with nothing backed off is an outage (DescribeTasks, or DynamoDB itself).
        count("ReconcilerBackedOff", report.backed_off)
    return report


def _running_slots(deps: Deps) -> dict[str, set[str]]:
    """The holders of every limited definition's slots (one read each; none without limits)."""
    return {
        name: deps.limits.holders(name)
        for name, definition in deps.settings.job_definitions.items()
        if definition.max_running is not None
    }


def _back_off(job: Job, now: datetime, deps: Deps) -> None:
    """Count a failure on the job, so the reconciler leaves it alone for a while. Never raises:
    when this write fails too (DynamoDB down), the job is only tried again on the next run."""

    def count_failure(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        return (lifecycle.reconcile_failed(j, job, now) if j is not None else None), None

    try:
        stored, _, written = write(deps, job.job_id, count_failure, known=job)
    except Exception:
        logger.exception("recording the reconciler's backoff failed", extra={"job_id": job.job_id})
        return
    if written and stored is not None:
        until = lifecycle.reconcile_backoff_until(stored, deps.settings)
        logger.warning(
            "reconciler backs off the job",
            extra={
                "job_id": job.job_id,
                "failures": stored.reconcile_failures,
                "until": iso(until),
            },
        )


def _recovered(job: Job, now: datetime, deps: Deps) -> None:
    """The reconciler did not fail on a job it had backed off: the backoff ends. Never raises
    (the job is only backed off a little longer)."""

    def forget_failures(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        return (lifecycle.reconcile_recovered(j, now) if j is not None else None), None

    try:
        write(deps, job.job_id, forget_failures, known=job)
    except Exception:
        logger.exception("ending the reconciler's backoff failed", extra={"job_id": job.job_id})


def _act(due: Due, job: Job, deps: Deps, to_describe: dict[str, list[Job]]) -> None:
    attempt = job.current
    if due == Due.REDECIDE:
        hand_to_decider(job.job_id, job.attempt, deps, job)
    elif due == Due.LAUNCH:
        launch_attempt(job, deps)
    elif due == Due.TEND:
        hand_off(job.job_id, deps)  # an array's parent: its fan-out and settling go on
    elif due in lifecycle.TIMED:
        enforce(due, job, deps)
    elif due == Due.LOOK and attempt.task_arn:
        if job.stop_request is not None:
            reason = lifecycle.STOP_REASONS.get(StopRequest(job.stop_request), "jobtracker: stop")
            deps.launcher.stop_task(
                cluster_of(deps, job, attempt.task_arn), attempt.task_arn, reason
            )
        to_describe[cluster_of(deps, job, attempt.task_arn)].append(job)


def _describe_and_apply(
    cluster: str, jobs: list[Job], now: datetime, deps: Deps, report: Report
) -> set[str]:
    """DescribeTasks in batches and apply what ECS says to each job. Returns the ids of the jobs
    it could not finish.

    A job that fails on its own backs off; the others go on. When DescribeTasks itself fails,
    that is ECS's trouble, not the jobs': they do not back off (an outage would otherwise write
    every quiet job and pass for as many poison jobs), the rest of the cluster waits for the next
    run, and a quiet job is only looked at once per quiet period anyway."""
    unfinished: set[str] = set()
    for start in range(0, len(jobs), 100):  # DescribeTasks takes at most 100 tasks
        batch = jobs[start : start + 100]
        arns = [j.current.task_arn for j in batch if j.current.task_arn]
        try:
            described = deps.launcher.describe_tasks(cluster, arns)
        except Exception:
            report.failed("DescribeTasks failed", cluster=cluster)
            return unfinished | {j.job_id for j in jobs[start:]}
        by_arn = {d.state.task_arn: d for d in described.tasks}
        for job in batch:
            try:
                found = by_arn.get(job.current.task_arn or "")
                _apply_described(cluster, job, found, described, deps, report)
            except Exception:
                report.failed("applying what DescribeTasks said failed", job_id=job.job_id)
                _back_off(job, now, deps)
                unfinished.add(job.job_id)
    return unfinished


def _apply_described(
    cluster: str,
    job: Job,
    found: DescribedTask | None,
    described: Describe,
    deps: Deps,
    report: Report,
) -> None:
    arn = job.current.task_arn
    if found is not None:
        result = apply_state(job.job_id, job.attempt, found.state, deps, known=job)
        report.actions[f"described_{result.value}"] += 1
        return
    if arn in described.missing:
        # ECS no longer knows it; stop it all the same before the retry policy relaunches,
        # so a task that is in fact still running can never run twice (StopTask on a
        # task that is gone is harmless).
        deps.launcher.stop_task(cluster, arn or "", lifecycle.LOST_REASON)
        count("StopTaskCalls")
        lost = TaskState(
            task_arn=arn or "",
            last_status="STOPPED",
            version=job.current.version + 1,
            desired_status="STOPPED",
            stopped_reason=lifecycle.LOST_REASON,
            observed_at=iso(deps.clock()),
            source="reconciler",
        )
        if apply_state(job.job_id, job.attempt, lost, deps, known=job) == EventResult.APPLIED:
            report.actions["lost"] += 1
            count("TasksLost")

"""The reconciler (every minute): no job ever goes quiet.

ECS has no task timeout, forgets stopped tasks after about an hour and can lose the STOPPED
event of a dead host; a message on a queue can be lost to a crash. Jobs due for a look are found
through the `by_watch` index (never a scan) and each gets what it needs:

- PENDING past not_before with no task: launched again (the clientToken keeps it single);
- a failed attempt whose hand-off to retry_decider went missing: handed off again;
- past timeout_seconds: StopTask, the job ends TIMED_OUT; past the start deadline: StopTask,
  the retry policy decides (rule start-deadline);
- no news for QUIET_AFTER_SECONDS: DescribeTasks in batches and apply what ECS says through the
  same version-guarded path as events; a task ECS no longer knows is marked lost (rule task-lost);
- CANCELLING (or a stop we asked for) with no STOPPED yet: StopTask again.

Safe to run twice at once or after a crash: every write is optimistic (revision-guarded),
StopTask is idempotent and RunTask carries the attempt's clientToken.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from jobtracker import lifecycle
from jobtracker.domain import Job, JobStatus, StopRequest, TaskState, iso, parse_iso
from jobtracker.observability import count, logger
from jobtracker.service import (
    Deps,
    EventResult,
    apply_state,
    cluster_of,
    default_deps,
    hand_to_decider,
    launch_attempt,
    mutate,
)


class Action(StrEnum):
    LAUNCH = "launch"
    REDECIDE = "redecide"
    TIMEOUT = "timeout"
    START_DEADLINE = "start_deadline"
    RESTOP = "restop"
    DESCRIBE = "describe"
    TOUCH = "touch"
    NOTHING = "nothing"


def plan(
    job: Job, now: datetime, quiet_after: int, decision_grace: int, default_start: int
) -> list[Action]:
    """What the reconciler should do for one job (pure)."""
    if job.status.terminal:
        return [Action.NOTHING]
    attempt = job.current
    quiet = timedelta(seconds=quiet_after)
    if attempt.awaiting_decision:
        stopped = parse_iso(attempt.stopped_at) or now
        if stopped + timedelta(seconds=decision_grace) <= now:
            return [Action.REDECIDE]
        return [Action.TOUCH]
    if job.status == JobStatus.PENDING:
        return [Action.LAUNCH] if lifecycle.launch_due(job, now) else [Action.TOUCH]
    actions: list[Action] = []
    if job.stop_request is None and job.status in (JobStatus.STARTING, JobStatus.RUNNING):
        began = parse_iso(attempt.started_at)
        launched = parse_iso(attempt.launched_at) or parse_iso(job.updated_at) or now
        if (
            job.spec.timeout_seconds
            and (began or launched) + timedelta(seconds=job.spec.timeout_seconds) <= now
        ):
            return [Action.TIMEOUT]
        start_limit = job.spec.start_timeout_seconds or default_start
        if (
            began is None
            and job.status == JobStatus.STARTING
            and launched + timedelta(seconds=start_limit) <= now
        ):
            return [Action.START_DEADLINE]
    last_news = max(
        (
            t
            for t in (parse_iso(job.updated_at), parse_iso(job.stop_requested_at), _last_event(job))
            if t
        ),
        default=now,
    )
    if last_news + quiet <= now:
        if job.stop_request is not None:
            actions.append(Action.RESTOP)
        actions.append(Action.DESCRIBE)
    return actions or [Action.TOUCH]


def _last_event(job: Job) -> datetime | None:
    times = [parse_iso(h.get("at")) for h in job.current.history.values()]
    return max((t for t in times if t), default=None)


@dataclass
class Report:
    seen: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def failed(self, message: str, **where: str) -> None:
        """One failure, logged with its traceback and counted (the ReconcilerErrors alarm)."""
        self.errors += 1
        count("ReconcilerErrors")
        logger.exception(message, extra=where)


def reconcile(deps: Deps | None = None, limit: int = 500) -> Report:
    deps = deps or default_deps()
    settings = deps.settings
    now = deps.clock()
    report = Report()
    to_describe: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for job_id in deps.repo.due_for_watch(iso(now) or "", limit):
        report.seen += 1
        try:
            job = deps.repo.get(job_id)
            if job is None:
                continue
            for action in plan(
                job,
                now,
                settings.quiet_after_seconds,
                settings.decision_grace_seconds,
                settings.default_start_timeout_seconds,
            ):
                report.actions[action.value] += 1
                _act(action, job, deps, to_describe)
        except Exception:
            report.failed("reconciling a job failed", job_id=job_id)
    for cluster, items in to_describe.items():
        try:
            _describe_and_apply(cluster, items, deps, report)
        except Exception:
            report.failed("DescribeTasks failed", cluster=cluster)
    for name, n in report.actions.items():
        count(f"Reconciler{name.title().replace('_', '')}", n)
    return report


def _act(
    action: Action, job: Job, deps: Deps, to_describe: dict[str, list[tuple[str, int, str]]]
) -> None:
    attempt = job.current
    if action == Action.LAUNCH:
        launch_attempt(job, deps)
    elif action == Action.REDECIDE:
        hand_to_decider(job.job_id, job.attempt, deps)
        _touch(job.job_id, deps)
    elif action in (Action.TIMEOUT, Action.START_DEADLINE):
        request = StopRequest.TIMEOUT if action == Action.TIMEOUT else StopRequest.START_TIMEOUT
        stored, arn = mutate(
            deps, job.job_id, lambda j: _request_stop(j, job.attempt, request, deps.clock())
        )
        if stored is not None and arn:
            deps.launcher.stop_task(
                cluster_of(deps, stored, arn), arn, lifecycle.STOP_REASONS[request]
            )
            count("StopTaskCalls")
    elif action == Action.RESTOP and attempt.task_arn:
        reason = lifecycle.STOP_REASONS.get(
            StopRequest(job.stop_request or "cancel"), "jobtracker: stop"
        )
        deps.launcher.stop_task(cluster_of(deps, job, attempt.task_arn), attempt.task_arn, reason)
    elif action == Action.DESCRIBE:
        if attempt.task_arn:
            to_describe[cluster_of(deps, job, attempt.task_arn)].append(
                (job.job_id, job.attempt, attempt.task_arn)
            )
        else:
            _touch(job.job_id, deps)
    elif action == Action.TOUCH:
        _touch(job.job_id, deps)


def _request_stop(
    job: Job, number: int, request: StopRequest, now: datetime
) -> tuple[bool, str | None]:
    if job.attempt != number or job.status.terminal or job.stop_request is not None:
        return False, None
    job.stop_request = request
    job.stop_requested_at = iso(now)
    job.updated_at = iso(now) or job.updated_at
    return True, job.current.task_arn


def _touch(job_id: str, deps: Deps) -> None:
    """Nothing to do now: write the job back so its watch time moves on (no busy loop)."""
    mutate(deps, job_id, lambda j: (not j.status.terminal, None))


def _describe_and_apply(
    cluster: str, items: list[tuple[str, int, str]], deps: Deps, report: Report
) -> None:
    described = deps.launcher.describe_tasks(cluster, [arn for _, _, arn in items])
    by_arn = {d.state.task_arn: d for d in described.tasks}
    for job_id, number, arn in items:
        found = by_arn.get(arn)
        if found is not None:
            result = apply_state(job_id, number, found.state, deps)
            report.actions[f"described_{result.value}"] += 1
            if result in (EventResult.DUPLICATE, EventResult.STALE):
                _touch(job_id, deps)
            continue
        if arn in described.missing:
            job = deps.repo.get(job_id)
            if job is None or job.attempt != number or job.status.terminal:
                continue
            lost = TaskState(
                task_arn=arn,
                last_status="STOPPED",
                version=job.current.version + 1,
                desired_status="STOPPED",
                stopped_reason=lifecycle.LOST_REASON,
                observed_at=iso(deps.clock()),
                source="reconciler",
            )
            apply_state(job_id, number, lost, deps)
            report.actions["lost"] += 1
            count("TasksLost")

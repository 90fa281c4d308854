"""Every transition of a job and its attempts: the one place that decides them. No I/O.

A `Transition` is data: the statuses a change may move a job from and the status it moves to.
Each decision below returns a `Change`: the `Guard` it assumed (the job's status, its current
attempt, the event version, ...) and the fields it sets. The store turns a Change into one
conditional UpdateItem (SET only those fields, the guard as its condition); the unit fakes check
the same guard with `Guard.holds` and apply the change with `Change.apply_to`. When a guard is
refused, the caller plans again from the job as stored and tries once more.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from jobtracker.config import JobDefinition, Settings
from jobtracker.core.domain import (
    ECS_PRE_RUNNING,
    STOP_TASK_CODE,
    Attempt,
    ContainerState,
    Job,
    JobStatus,
    LaunchFailure,
    Outcome,
    StopRequest,
    TaskState,
    client_token,
    history_key,
    iso,
    parse_iso,
)
from jobtracker.core.policy import Decision, RetryPolicy, backoff_seconds, decide

STOP_REASONS = {
    StopRequest.CANCEL: "jobtracker: cancelled",
    StopRequest.TIMEOUT: "jobtracker: timeout",
    StopRequest.START_TIMEOUT: "jobtracker: start deadline exceeded",
    StopRequest.REPLACED: "jobtracker: replaced by a newer scheduled run",
}
LOST_REASON = "jobtracker: task lost (ECS no longer knows it)"
# An attempt keeps at most this many states in its history (a Fargate task has about 8): a task
# that reports more still moves its job, its extra states are counted, not kept, so the record
# can never outgrow DynamoDB's 400 KB item.
MAX_HISTORY = 100
# What ends the reconciler's backoff of a job (see RECONCILE_BACKOFF_MINUTES): its failures
# forgotten. Set by every status move and by the reconciler's own success.
RECOVERED: dict[str, Any] = {"reconcile_failures": 0, "reconcile_failed_at": None}

P, S, R, C = JobStatus.PENDING, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.CANCELLING
W = JobStatus.WAITING  # blocked on its dependencies: no task, no launch slot, no deadline
LIVE = frozenset({P, S, R})
NON_TERMINAL = LIVE | {C}
EVERY = frozenset(JobStatus)


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[JobStatus]
    target: JobStatus | None = None  # None: the status stays as it is


def _t(name: str, sources: frozenset[JobStatus], target: JobStatus | None = None) -> Transition:
    return Transition(name, frozenset(sources), target)


# The whole state machine. A new status or move is one row here.
LAUNCHED = _t("launched", frozenset({P}), S)
LAUNCH_NOTED = _t("launch_noted", frozenset({S, R, C}))  # an event got there first
LAUNCHED_TOO_LATE = _t("launched_too_late", frozenset(s for s in JobStatus if s.terminal))
LAUNCH_FAILED = _t("launch_failed", frozenset({P}))
LAUNCH_WAITING = _t("launch_waiting", frozenset({P}), P)  # PENDING, its reason says why
LAUNCH_GAVE_UP = _t("launch_gave_up", frozenset({P}), JobStatus.FAILED)
TASK_STARTING = _t("task_starting", frozenset({P, S}), S)
TASK_RUNNING = _t("task_running", frozenset({P, S}), R)
TASK_NOTED = _t("task_noted", frozenset({R, C}))  # a newer state that moves no status
TASK_SUCCEEDED = _t("task_succeeded", NON_TERMINAL, JobStatus.SUCCEEDED)
TASK_CANCELLED = _t("task_cancelled", NON_TERMINAL, JobStatus.CANCELLED)
TASK_TIMED_OUT = _t("task_timed_out", NON_TERMINAL, JobStatus.TIMED_OUT)
TASK_FAILED = _t("task_failed", NON_TERMINAL)  # waits for retry_decider
RETRY = _t("retry", LIVE, P)
FAIL = _t("fail", NON_TERMINAL, JobStatus.FAILED)
CANCEL_DECIDED = _t("cancel_decided", NON_TERMINAL, JobStatus.CANCELLED)
CANCEL_PENDING = _t("cancel_pending", frozenset({W, P}), JobStatus.CANCELLED)
CANCEL_REQUESTED = _t("cancel_requested", LIVE, C)
STOP_REQUESTED = _t("stop_requested", frozenset({S, R}))
HISTORY = _t("history", EVERY)  # history only: stale or late events
RECONCILE_FAILED = _t("reconcile_failed", NON_TERMINAL)  # the reconciler backs off the job
RECONCILE_RECOVERED = _t("reconcile_recovered", NON_TERMINAL)  # its backoff ends
# An array's parent runs no task: its status follows its children's counters (core/arrays.py).
ARRAY_STARTED = _t("array_started", frozenset({P}), R)
ARRAY_ENDED = {
    target: _t(f"array_{target.value.lower()}", NON_TERMINAL, target)
    for target in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
}
# retry-failed: a finished array runs again, and so does each child it runs again (the only
# moves out of a terminal status: an array's retry round, asked for by its user).
ARRAY_REOPENED = _t("array_reopened", frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED}), R)
CHILD_RETRIED = _t(
    "child_retried", frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED}), P
)
REOPENING = frozenset({ARRAY_REOPENED, CHILD_RETRIED})  # the store keeps such a job again
# Dependencies (core/dependencies.py): one met of several, the last one met, one never to be.
DEPENDENCY_MET = _t("dependency_met", frozenset({W}))
RELEASED = _t("released", frozenset({W}), P)
DEPENDENCY_NEVER = _t("dependency_never", frozenset({W}), JobStatus.CANCELLED)
# A job gets its first dependent: its end is looked up in the dependency index from now on
# (and its page lists its dependents, a finished job's too).
DEPENDED_ON = _t("depended_on", EVERY)

TRANSITIONS = (
    LAUNCHED,
    LAUNCH_NOTED,
    LAUNCHED_TOO_LATE,
    LAUNCH_FAILED,
    LAUNCH_WAITING,
    LAUNCH_GAVE_UP,
    TASK_STARTING,
    TASK_RUNNING,
    TASK_NOTED,
    TASK_SUCCEEDED,
    TASK_CANCELLED,
    TASK_TIMED_OUT,
    TASK_FAILED,
    RETRY,
    FAIL,
    CANCEL_DECIDED,
    CANCEL_PENDING,
    CANCEL_REQUESTED,
    STOP_REQUESTED,
    HISTORY,
    RECONCILE_FAILED,
    RECONCILE_RECOVERED,
    ARRAY_STARTED,
    *ARRAY_ENDED.values(),
    ARRAY_REOPENED,
    CHILD_RETRIED,
    DEPENDENCY_MET,
    RELEASED,
    DEPENDENCY_NEVER,
    DEPENDED_ON,
)

# The stop we asked for decides how a stopped task ends the job; anything else is a failure
# for the retry policy. A cancel or a timeout never retries: this table is the only place.
# (A cancel keeps the reason its request wrote.)
REQUESTED_ENDS: dict[str, tuple[Transition, Outcome, str | None]] = {
    StopRequest.CANCEL: (TASK_CANCELLED, Outcome.CANCELLED, None),
    StopRequest.TIMEOUT: (TASK_TIMED_OUT, Outcome.TIMED_OUT, "attempt exceeded timeout_seconds"),
}
# A timeout is the attempt's end only when StopTask ended the task: a task that ended on its own
# before our stop reached it keeps its own outcome (a stop that comes after the end changes
# nothing). A cancel ends the job however the task ended: its user asked for no more of it.
ENDS_ONLY_BY_OUR_STOP = frozenset({StopRequest.TIMEOUT})


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()


@dataclass(frozen=True)
class Guard:
    """What a change assumed about the stored job. Every field left at its default is not
    checked; `statuses` always is."""

    statuses: frozenset[JobStatus]
    attempt: int | None = None  # the job's current attempt number
    newer_than: int | None = None  # the current attempt's applied version is below this
    unfinished: bool = False  # the current attempt has neither an outcome nor awaits one
    stop_request: Any = ANY  # None: no stop asked for; a value: that one
    awaiting_decision: bool | None = None
    launch_failures: int | None = None
    launch_waits: int | None = None
    reconcile_failures: int | None = None  # only the reconciler's own writes check it
    no_task: bool = False
    history_absent: str | None = None  # this history key is not recorded yet
    history_count: int | None = None  # the current attempt has exactly this many history entries
    history_below: int | None = None  # the current attempt has fewer history entries than this
    # A WAITING job still waits on this dependency, among exactly `waiting_count` (its set only
    # shrinks, so the two pin the set as it was read).
    waiting_has: str | None = None
    waiting_count: int | None = None

    def holds(self, job: Job) -> bool:
        if job.status not in self.statuses:
            return False
        if self.attempt is not None and job.attempt != self.attempt:
            return False
        cur = job.attempts.get(job.attempt)
        if cur is None:
            return False
        if self.newer_than is not None and cur.version >= self.newer_than:
            return False
        if self.unfinished and (cur.outcome is not None or cur.awaiting_decision):
            return False
        if self.stop_request is not ANY and job.stop_request != self.stop_request:
            return False
        if (
            self.awaiting_decision is not None
            and cur.awaiting_decision is not self.awaiting_decision
        ):
            return False
        if self.launch_failures is not None and job.launch_failures != self.launch_failures:
            return False
        if self.launch_waits is not None and job.launch_waits != self.launch_waits:
            return False
        if (
            self.reconcile_failures is not None
            and job.reconcile_failures != self.reconcile_failures
        ):
            return False
        if self.no_task and cur.task_arn is not None:
            return False
        if self.history_count is not None and len(cur.history) != self.history_count:
            return False
        if self.history_below is not None and len(cur.history) >= self.history_below:
            return False
        if self.waiting_has is not None and self.waiting_has not in job.waiting_on:
            return False
        if self.waiting_count is not None and len(job.waiting_on) != self.waiting_count:
            return False
        return self.history_absent is None or self.history_absent not in cur.history


@dataclass(frozen=True)
class Change:
    """One write: a transition of one job, guarded. Field names are the domain's (Job and
    Attempt attributes); None removes a field."""

    transition: Transition
    job_id: str
    guard: Guard
    sets: dict[str, Any] = field(default_factory=dict)  # Job fields
    attempt_sets: dict[str, Any] = field(default_factory=dict)  # current Attempt fields
    attempt_defaults: dict[str, Any] = field(default_factory=dict)  # set only where absent
    history: tuple[str, dict[str, Any]] | None = None  # (key, entry) on the current attempt
    archive: Attempt | None = None  # the finished attempt, kept in a record of its own
    new_attempt: Attempt | None = None  # becomes the current attempt
    on_archived: int | None = None  # history of this earlier (archived) attempt instead

    def apply_to(self, job: Job) -> None:
        """What the write does, on a Job in memory (the fakes; tests of pure rules)."""
        if self.on_archived is not None:
            old = job.attempts.get(self.on_archived)
            if old is not None and self.history is not None:
                old.history.setdefault(*self.history)
            return
        for name, value in self.sets.items():
            setattr(job, name, value)
        cur = job.attempts[job.attempt]
        for name, value in self.attempt_sets.items():
            setattr(cur, name, value)
        for name, value in self.attempt_defaults.items():
            if getattr(cur, name) is None:
                setattr(cur, name, value)
        if self.history is not None:
            cur.history.setdefault(*self.history)
        if self.archive is not None:
            job.attempts[self.archive.number] = self.archive
        if self.new_attempt is not None:
            job.attempts[self.new_attempt.number] = self.new_attempt
            job.attempt = self.new_attempt.number


def _status_sets(target: JobStatus | None, now: datetime, reason: str | None) -> dict[str, Any]:
    """The fields a move to `target` sets, whichever transition makes it."""
    sets: dict[str, Any] = {}
    if target is None:
        return sets
    sets["status"] = target
    sets["updated_at"] = iso(now)
    # A job that moves on is a new case for the reconciler: whatever it failed on before is
    # behind it, so its backoff ends (a REMOVE of absent attributes: no cost when there is none).
    sets.update(RECOVERED)
    if reason is not None:
        sets["status_reason"] = reason
    if target != JobStatus.PENDING:
        sets["not_before"] = None  # only a PENDING job waits for a launch time
    if target.terminal:
        sets["finished_at"] = iso(now)
    return sets


def change(
    transition: Transition,
    job_id: str,
    now: datetime,
    *,
    reason: str | None = None,
    sets: dict[str, Any] | None = None,
    **parts: Any,
) -> Change:
    """A Change for `transition`: its status fields, then the caller's."""
    guard_fields = {k: parts.pop(k) for k in list(parts) if k in Guard.__dataclass_fields__}
    all_sets = _status_sets(transition.target, now, reason)
    all_sets.update(sets or {})
    return Change(
        transition,
        job_id,
        Guard(statuses=transition.sources, **guard_fields),
        sets=all_sets,
        **parts,
    )


# ---- attempts -------------------------------------------------------------------------------


def new_attempt(job_id: str, number: int, now: datetime) -> Attempt:
    return Attempt(number=number, client_token=client_token(job_id, number), created_at=iso(now))


def _deciding(containers: list[ContainerState], definition: JobDefinition | None) -> None:
    if definition is None:
        return
    names = set(definition.deciding_containers)
    if any(c.name in names for c in containers):
        for c in containers:
            c.essential = c.name in names


def succeeded(containers: list[ContainerState], stop_code: str | None) -> bool:
    """All deciding containers exited 0. A missing exit code is never success."""
    deciding = [c for c in containers if c.essential] or containers
    if not deciding or any(c.exit_code != 0 for c in deciding):
        return False
    return stop_code in (None, "EssentialContainerExited")


# ---- task states (events and DescribeTasks) ---------------------------------------------------


class Applied(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Plan:
    applied: Applied
    change: Change | None = None
    needs_decision: bool = False  # a failed attempt waits for retry_decider
    history_full: bool = False  # the state was applied but its history had no room left

    @property
    def job_changed(self) -> bool:
        return self.change is not None and self.change.transition.target is not None

    @property
    def history_added(self) -> bool:
        return self.change is not None and self.change.history is not None


def plan_task_state(
    job_id: str,
    number: int,
    state: TaskState,
    now: datetime,
    definition: JobDefinition | None = None,
    job: Job | None = None,
) -> Plan:
    """What one observed task state does. Without `job` (no read), it assumes the usual case
    (the attempt is current, unfinished, and no stop was asked for) and the guard says so; when
    the store refuses, plan again with the job it hands back."""
    key = history_key(state.version)
    entry = state.history_entry()
    if job is not None:
        cur = job.attempts.get(number)
        if number < job.attempt:
            # An earlier attempt's record is final: a late event only adds to its history.
            return Plan(
                Applied.STALE,
                change(HISTORY, job_id, now, history=(key, entry), on_archived=number),
            )
        if cur is None or number != job.attempt:
            return Plan(Applied.UNKNOWN)
        full = len(cur.history) >= MAX_HISTORY
        history_only = (
            None
            if full
            else change(
                HISTORY, job_id, now, attempt=number, history_absent=key, history=(key, entry)
            )
        )
        if state.version <= cur.version:
            if key not in cur.history:
                return Plan(Applied.STALE, history_only, history_full=full)
            duplicate = state.version == cur.version
            # A redelivered STOPPED whose hand-off may have been lost: hand it off again.
            redo = duplicate and cur.awaiting_decision and not job.status.terminal
            return Plan(Applied.DUPLICATE if duplicate else Applied.STALE, needs_decision=redo)
        if job.status.terminal or cur.outcome is not None or cur.awaiting_decision:
            # The attempt's outcome is decided: what decided it stays as it was.
            if key in cur.history:
                return Plan(Applied.DUPLICATE)
            return Plan(Applied.STALE, history_only, history_full=full)
        return _newer_state(
            job_id, number, state, now, definition, job.status, job.stop_request, full
        )
    return _newer_state(job_id, number, state, now, definition, None, ANY, False)


def _newer_state(
    job_id: str,
    number: int,
    state: TaskState,
    now: datetime,
    definition: JobDefinition | None,
    status: JobStatus | None,
    stop_request: Any,
    history_full: bool,
) -> Plan:
    attempt_sets: dict[str, Any] = {"version": state.version, "last_status": state.last_status}
    defaults: dict[str, Any] = {"task_arn": state.task_arn}
    if state.started_at:
        attempt_sets["started_at"] = state.started_at
    if state.desired_status == "STOPPED" and state.spot_interruption:
        defaults["spot_interruption_at"] = state.observed_at
        attempt_sets["stop_code"] = state.stop_code
        attempt_sets["stopped_reason"] = state.stopped_reason
    common: dict[str, Any] = {
        "attempt": number,
        "newer_than": state.version,
        "unfinished": True,
        "attempt_defaults": defaults,
    }
    if not history_full:
        common["history"] = (history_key(state.version), state.history_entry())
        common["history_below"] = MAX_HISTORY
    if not state.stopped:
        if status is None or status in (P, S):
            transition = TASK_STARTING if state.last_status in ECS_PRE_RUNNING else TASK_RUNNING
        else:
            transition = TASK_NOTED
        noted = change(transition, job_id, now, attempt_sets=attempt_sets, **common)
        return Plan(Applied.APPLIED, noted, history_full=history_full)
    containers = [replace(c) for c in state.containers]
    _deciding(containers, definition)
    attempt_sets.update(
        stopped_at=state.stopped_at or state.observed_at or iso(now),
        stop_code=state.stop_code,
        stopped_reason=state.stopped_reason,
        containers=containers,
    )
    if succeeded(containers, state.stop_code):
        attempt_sets["outcome"] = Outcome.SUCCEEDED
        done = change(
            TASK_SUCCEEDED, job_id, now, reason="succeeded", attempt_sets=attempt_sets, **common
        )
        return Plan(Applied.APPLIED, done, history_full=history_full)
    requested = REQUESTED_ENDS.get(stop_request) if stop_request is not ANY else None
    if stop_request in ENDS_ONLY_BY_OUR_STOP and state.stop_code != STOP_TASK_CODE:
        requested = None
    if requested is not None:
        transition, outcome, reason = requested
        attempt_sets["outcome"] = outcome
        ended = change(
            transition,
            job_id,
            now,
            reason=reason,
            attempt_sets=attempt_sets,
            stop_request=stop_request,
            **common,
        )
        return Plan(Applied.APPLIED, ended, history_full=history_full)
    attempt_sets["awaiting_decision"] = True
    failed = change(
        TASK_FAILED,
        job_id,
        now,
        attempt_sets=attempt_sets,
        stop_request=None if stop_request is ANY else stop_request,
        **common,
    )
    return Plan(Applied.APPLIED, failed, needs_decision=True, history_full=history_full)


def apply_task_state(
    job: Job, number: int, state: TaskState, now: datetime, definition: JobDefinition | None = None
) -> Plan:
    """plan_task_state on a job in memory, applied to it (tests and pure callers)."""
    plan = plan_task_state(job.job_id, number, state, now, definition, job)
    if plan.change is not None:
        plan.change.apply_to(job)
    return plan


# ---- retry decisions ------------------------------------------------------------------------


@dataclass
class RetryPlan:
    decision: Decision
    change: Change
    next_attempt: int | None = None
    wait_seconds: float = 0.0


def policy_of(job: Job, settings: Settings) -> RetryPolicy:
    """The job's retry policy: the deployment's defaults, the definition's, then the job's own
    overrides. Only the overrides are stored with the job: defaults are referenced, not copied."""
    from jobtracker.core.policy import RetryOverrides

    definition = settings.job_definitions.get(job.definition)
    policy = settings.default_retry
    if definition is not None:
        policy = policy.with_overrides(definition.retry)
    if job.spec.retry:
        policy = policy.with_overrides(RetryOverrides.from_dict(job.spec.retry))
    return policy


def _cancel_asked(job: Job) -> bool:
    return job.stop_request == StopRequest.CANCEL or job.status == JobStatus.CANCELLING


def decide_retry(
    job: Job,
    number: int,
    now: datetime,
    settings: Settings,
    rand: Callable[[], float] | None = None,
) -> RetryPlan | None:
    """Apply the retry policy to a stopped, failed attempt. None: nothing to decide (already
    decided, another attempt is current, or the job has ended)."""
    cur = job.attempts.get(number)
    if cur is None or number != job.attempt or job.status.terminal or not cur.awaiting_decision:
        return None
    policy = policy_of(job, settings)
    decision = decide(policy, cur, job.attempt - job.uncounted, job.uncounted)
    # The decision may be planned from the snapshot the hand-off carried: the guard says what
    # it assumed (this attempt still waits, no stop asked for since), so a cancel in between
    # makes the store refuse it and the decision is made again from the stored job.
    guard: dict[str, Any] = {
        "attempt": number,
        "awaiting_decision": True,
        "stop_request": job.stop_request,
    }
    decided = {"awaiting_decision": False, "rule": decision.rule}
    if _cancel_asked(job):
        ended = change(
            CANCEL_DECIDED,
            job.job_id,
            now,
            reason=job.status_reason or "cancelled",
            attempt_sets={**decided, "outcome": Outcome.CANCELLED},
            **guard,
        )
        return RetryPlan(Decision("FAIL", "cancelled", decision.reason), ended)
    lost = cur.outcome == Outcome.LOST
    if decision.action == "FAIL":
        failed = change(
            FAIL,
            job.job_id,
            now,
            reason=decision.reason,
            attempt_sets={**decided, "outcome": Outcome.LOST if lost else Outcome.FAIL},
            **guard,
        )
        return RetryPlan(decision, failed)
    uncounted = decision.action == "RETRY_UNCOUNTED"
    archived = replace(
        cur,
        awaiting_decision=False,
        rule=decision.rule,
        outcome=Outcome.LOST if lost else Outcome.RETRY,
        uncounted=uncounted,
    )
    draw = rand or random.random
    wait = backoff_seconds(policy.backoff, job.attempt, settings.backoff_scale, draw)
    retried = change(
        RETRY,
        job.job_id,
        now,
        sets={
            "stop_request": None,
            "stop_requested_at": None,
            "launch_error": None,
            "launch_failures": 0,
            "launch_waits": 0,
            "not_before": iso(now + timedelta(seconds=wait)),
            "uncounted": job.uncounted + (1 if uncounted else 0),
        },
        archive=archived,
        new_attempt=new_attempt(job.job_id, number + 1, now),
        # The archive is this attempt as planned: a late event that added to its history since
        # makes the store refuse, and the archive is written again from the stored job.
        history_count=len(cur.history),
        **guard,
    )
    return RetryPlan(decision, retried, number + 1, wait)


# ---- launching ------------------------------------------------------------------------------


def launch_due(job: Job, now: datetime) -> bool:
    """May the current attempt be launched now? (Never an array's parent: its children are.)"""
    if job.status != JobStatus.PENDING or job.current.task_arn or job.is_array:
        return False
    due = parse_iso(job.not_before)
    return due is None or due <= now


def record_launch(
    job: Job, number: int, task_arn: str, now: datetime, log_stream: str | None
) -> tuple[Change | None, bool]:
    """Record the task of an attempt, and whether it may run: not when the job moved on
    meanwhile (e.g. cancelled), and the caller must then stop the task it just launched."""
    if job.attempt != number:
        return None, False
    defaults = {"task_arn": task_arn, "launched_at": iso(now), "log_stream": log_stream}
    if job.status.terminal:
        # Kept on the attempt all the same: which task was launched, and stopped, is history.
        late = change(LAUNCHED_TOO_LATE, job.job_id, now, attempt=number, attempt_defaults=defaults)
        return late, False
    if job.status == JobStatus.PENDING:
        launched = change(
            LAUNCHED,
            job.job_id,
            now,
            sets={"launch_error": None},
            attempt=number,
            attempt_defaults=defaults,
        )
        return launched, True
    noted = change(LAUNCH_NOTED, job.job_id, now, attempt=number, attempt_defaults=defaults)
    return noted, True


def launch_backoff(
    settings: Settings, failures: int, rand: Callable[[], float] | None = None
) -> float:
    draw = rand or random.random
    ceiling = min(
        settings.launch_backoff_cap_seconds,
        settings.launch_backoff_base_seconds * 2 ** max(0, failures - 1),
    )
    # Half fixed, half jitter: launches throttled together spread out, but never instantly.
    return (ceiling / 2 + ceiling / 2 * draw()) * settings.backoff_scale


# A job waiting for a slot of its definition's running limit looks again within this: slots free
# as tasks stop, at no time known in advance.
RUNNING_SLOT_WAIT_CAP_SECONDS = 30.0


def running_slot(job_id: str, attempt: int) -> str:
    """What holds a slot of a running limit: one attempt of one job (a late STOPPED of an earlier
    attempt never gives back the slot of the current one)."""
    return f"{job_id}#{attempt}"


def running_slot_wait(
    settings: Settings, failures: int, rand: Callable[[], float] | None = None
) -> float:
    """How long a job refused a running slot waits before it asks again."""
    cap = RUNNING_SLOT_WAIT_CAP_SECONDS * settings.backoff_scale
    return min(cap, launch_backoff(settings, failures, rand))


def record_launch_failure(
    job: Job,
    number: int,
    error: str,
    failure: LaunchFailure,
    now: datetime,
    settings: Settings,
    rand: Callable[[], float] | None = None,
    wait: float | None = None,
) -> tuple[Change, float | None] | None:
    """The change, and the wait before the next launch try (None: the job FAILED). None when
    the attempt is no longer waiting for a launch. `wait`: when the next try may go, if known
    (the governor says); else a backoff.

    A burst never fails a job: throttling and capacity make it wait, visibly (its status reason
    says so), until it launches or its own queue_timeout_seconds runs out."""
    if job.attempt != number or job.status != JobStatus.PENDING:
        return None
    # Waits and failures count apart: only transient errors are bounded, so a job that waited
    # for capacity many times still gets every retry on its first transient error.
    waits = job.launch_waits + (1 if failure == LaunchFailure.WAIT else 0)
    failures = job.launch_failures + (0 if failure == LaunchFailure.WAIT else 1)
    guard: dict[str, Any] = {
        "attempt": number,
        "launch_failures": job.launch_failures,
        "launch_waits": job.launch_waits,
    }
    sets: dict[str, Any] = {"launch_error": error}
    if failure == LaunchFailure.WAIT:
        sets["launch_waits"] = waits
    else:
        sets["launch_failures"] = failures
    waiting_since = parse_iso(job.current.created_at) or parse_iso(job.created_at) or now
    timeout = job.spec.queue_timeout_seconds
    queue_timed_out = timeout is not None and now >= waiting_since + timedelta(seconds=timeout)
    if failure == LaunchFailure.WAIT and not queue_timed_out:
        wait = wait if wait is not None else launch_backoff(settings, waits, rand)
        sets.update(not_before=iso(now + timedelta(seconds=wait)))
        waiting = change(
            LAUNCH_WAITING,
            job.job_id,
            now,
            reason=f"waiting for launch capacity: {error}",
            sets=sets,
            **guard,
        )
        return waiting, wait
    if failure == LaunchFailure.RETRY and failures < settings.max_launch_failures:
        wait = wait if wait is not None else launch_backoff(settings, failures, rand)
        sets.update(updated_at=iso(now), not_before=iso(now + timedelta(seconds=wait)))
        return change(LAUNCH_FAILED, job.job_id, now, sets=sets, **guard), wait
    if failure == LaunchFailure.WAIT:
        rule, reason = "queue-timeout", f"no launch capacity within {timeout} s: {error}"
    elif failure == LaunchFailure.RETRY:
        rule, reason = "launch-failures-exhausted", f"launch failed after {failures} tries: {error}"
    else:
        rule, reason = "launch-failed", f"launch failed: {error}"
    gave_up = change(
        LAUNCH_GAVE_UP,
        job.job_id,
        now,
        reason=reason,
        sets=sets,
        attempt_sets={"outcome": Outcome.FAIL, "rule": rule},
        **guard,
    )
    return gave_up, None


# ---- arrays -----------------------------------------------------------------------------------


def array_moved(job: Job, target: JobStatus, reason: str | None, now: datetime) -> Change | None:
    """An array's parent moved to `target` (core.arrays.parent_status's verdict), from where it
    is; None when it is there already or has ended."""
    if job.status == target or job.status.terminal:
        return None
    if target == JobStatus.RUNNING:
        if job.status != JobStatus.PENDING:
            return None
        return change(ARRAY_STARTED, job.job_id, now, reason=reason)
    row = ARRAY_ENDED.get(target)
    if row is None:  # PENDING, CANCELLING: where a parent already is, or its cancel put it
        return None
    return change(row, job.job_id, now, reason=reason)


def array_reopened(job: Job, reason: str, now: datetime) -> Change | None:
    """A finished array's retry round begins (retry-failed): RUNNING again."""
    if job.status not in ARRAY_REOPENED.sources:
        return None
    return change(ARRAY_REOPENED, job.job_id, now, reason=reason, sets={"finished_at": None})


def child_retried(job: Job, reason: str, now: datetime, hold_until: datetime) -> Change | None:
    """A child its array's retry round runs again: a new attempt, PENDING and held until its
    index is claimed (as a new child is); the ended attempt is archived."""
    if job.status not in CHILD_RETRIED.sources:
        return None
    cur = job.current
    return change(
        CHILD_RETRIED,
        job.job_id,
        now,
        reason=reason,
        sets={
            "finished_at": None,
            "stop_request": None,
            "stop_requested_at": None,
            "launch_error": None,
            "launch_failures": 0,
            "launch_waits": 0,
            "not_before": iso(hold_until),
        },
        archive=cur,
        new_attempt=new_attempt(job.job_id, job.attempt + 1, now),
        attempt=job.attempt,
        history_count=len(cur.history),
    )


# ---- dependencies ---------------------------------------------------------------------------


def dependency_ended(
    job: Job, dependency_id: str, status: JobStatus | None, now: datetime
) -> Change | None:
    """A dependency of a WAITING job ended `status` (None: its record is gone): one fewer to
    wait on, the job released (PENDING) when it was the last, or CANCELLED when the condition
    can never be met. None when there is nothing to do: the job no longer waits on it (a
    duplicate), or it has not ended."""
    from jobtracker.core import dependencies as d

    if job.status != W or dependency_id not in job.waiting_on:
        return None
    condition = d.condition_on(job, dependency_id) or d.Condition.SUCCEEDED
    decided = d.verdict(condition, status)
    if decided == d.Verdict.OPEN:
        return None
    guard: dict[str, Any] = {
        "waiting_has": dependency_id,
        "waiting_count": len(job.waiting_on),
        "attempt": job.attempt,
    }
    if decided == d.Verdict.NEVER:
        return change(
            DEPENDENCY_NEVER,
            job.job_id,
            now,
            reason=d.never_reason(dependency_id, status),
            attempt_sets={"outcome": Outcome.CANCELLED, "rule": d.RULE},
            **guard,
        )
    rest = job.waiting_on - {dependency_id}
    if rest:
        return change(
            DEPENDENCY_MET,
            job.job_id,
            now,
            sets={"waiting_on": rest, "status_reason": d.waiting_reason(job, rest)},
            **guard,
        )
    # (a child's hold ends too)
    released = {"waiting_on": None, "not_before": None, "released_at": iso(now)}
    return change(RELEASED, job.job_id, now, reason="dependencies met", sets=released, **guard)


def depended_on(job: Job, now: datetime) -> Change | None:
    """A job's first dependent is stored: from now on its end releases its dependents (one
    that ended already decides at once, from its final status). None when marked already."""
    if job.has_dependents:
        return None
    return change(DEPENDED_ON, job.job_id, now, sets={"has_dependents": True})


# ---- cancel and stop requests ---------------------------------------------------------------


@dataclass
class CancelResult:
    accepted: bool
    conflict: str | None = None
    stop_task: str | None = None  # ARN of a task to StopTask
    change: Change | None = None


def request_cancel(job: Job, reason: str | None, now: datetime) -> CancelResult:
    if job.status.terminal:
        if job.status == JobStatus.CANCELLED:
            return CancelResult(accepted=True)
        return CancelResult(accepted=False, conflict=f"job already {job.status.value}")
    text = f"cancelled: {reason}" if reason else "cancelled"
    if job.status == JobStatus.CANCELLING:
        return CancelResult(accepted=True, stop_task=job.current.task_arn)
    # An array's parent is CANCELLING until its children are (a fan-out may be making some);
    # a WAITING one has none yet.
    unlaunched = job.status == JobStatus.PENDING and not job.current.task_arn and not job.is_array
    if unlaunched or job.status == W:
        cancelled = change(
            CANCEL_PENDING,
            job.job_id,
            now,
            reason=text,
            sets={"stop_request": StopRequest.CANCEL},
            attempt_sets={"outcome": Outcome.CANCELLED},
            attempt=job.attempt,
            no_task=True,
        )
        return CancelResult(accepted=True, change=cancelled)
    asked = change(
        CANCEL_REQUESTED,
        job.job_id,
        now,
        reason=text,
        sets={"stop_request": StopRequest.CANCEL, "stop_requested_at": iso(now)},
        attempt=job.attempt,
    )
    return CancelResult(accepted=True, stop_task=job.current.task_arn, change=asked)


def request_stop(job: Job, number: int, request: StopRequest, now: datetime) -> Change | None:
    """The reconciler stops an attempt past a deadline; its STOPPED event then ends it."""
    if job.attempt != number or job.status.terminal or job.stop_request is not None:
        return None
    if job.status not in STOP_REQUESTED.sources:
        return None
    return change(
        STOP_REQUESTED,
        job.job_id,
        now,
        sets={"stop_request": request, "stop_requested_at": iso(now), "updated_at": iso(now)},
        attempt=number,
        stop_request=None,
    )


# ---- deadlines ------------------------------------------------------------------------------


class Due(StrEnum):
    """What the reconciler owes a job once a deadline passes (in this order of precedence)."""

    REDECIDE = "redecide"  # a failed attempt's hand-off to retry_decider went missing
    LAUNCH = "launch"  # a PENDING attempt's launch message went missing
    TIMEOUT = "timeout"  # past timeout_seconds: stop it, the job ends TIMED_OUT
    START_DEADLINE = "start_deadline"  # never reached RUNNING: stop it, the policy decides
    LOOK = "describe"  # no news for quiet_after_seconds: ask ECS (and stop again if we asked)
    TEND = "tend"  # an array's parent, quiet: its fan-out and settling are handed off again


# The reconciler's backoff: after n consecutive failures on a job it leaves the job alone for
# RECONCILE_BACKOFF_MINUTES[n - 1] minutes (the last entry, one hour, is the cap). It starts at
# 2: the reconciler runs every minute, so a wait of 1 would be no wait at all. No jitter: the
# reconciler tries every due job every minute anyway, so jobs that come back together never
# cost more than they did before they failed.
RECONCILE_BACKOFF_MINUTES = (2, 4, 8, 16, 32, 60)


def reconcile_backoff_until(job: Job, settings: Settings) -> datetime | None:
    """When the reconciler may act on a job again after failing on it (None: not backed off).

    Counted from the minute of the last failure, not its second: the schedule fires once a
    minute at any second of it, so a wait of n minutes lets the run n minutes later through
    however early in its minute that run starts."""
    failed = parse_iso(job.reconcile_failed_at)
    if not job.reconcile_failures or failed is None:
        return None
    steps = RECONCILE_BACKOFF_MINUTES
    minutes = steps[min(job.reconcile_failures, len(steps)) - 1]
    return failed.replace(second=0, microsecond=0) + timedelta(
        minutes=minutes * settings.backoff_scale
    )


def reconcile_failed(job: Job, failed_on: Job, now: datetime) -> Change | None:
    """The reconciler failed acting on `failed_on` (the job as it read it): count the failure
    on the stored `job`, unless the job has moved on since (then it is a new case) or ended."""
    if job.status.terminal or (job.status, job.attempt) != (failed_on.status, failed_on.attempt):
        return None
    return Change(
        RECONCILE_FAILED,
        job.job_id,
        Guard(
            statuses=frozenset({job.status}),
            attempt=job.attempt,
            reconcile_failures=job.reconcile_failures,
        ),
        sets={"reconcile_failures": job.reconcile_failures + 1, "reconcile_failed_at": iso(now)},
    )


def reconcile_recovered(job: Job, now: datetime) -> Change | None:
    """The reconciler reached a backed-off job and did not fail on it: its backoff ends."""
    if job.status.terminal or not job.reconcile_failures:
        return None
    return change(
        RECONCILE_RECOVERED,
        job.job_id,
        now,
        sets=dict(RECOVERED),
        reconcile_failures=job.reconcile_failures,
    )


def last_news(job: Job) -> datetime | None:
    cur = job.current
    times = [parse_iso(job.updated_at), parse_iso(job.stop_requested_at)]
    times += [parse_iso(h.get("at")) for h in cur.history.values()]
    return max((t for t in times if t), default=None)


# The deadlines a timer enforces to the second (usecases/deadlines.py), the reconciler being
# their backstop and the only enforcer of the others. The start deadline is timed when the job
# set one; the deployment's default (DEFAULT_START_TIMEOUT_SECONDS, 15 minutes: a net for a task
# stuck provisioning) is left to the reconciler's minute: a timer for every job would add about
# $1.6 per million jobs (bench/cost.py) for a minute's precision on a 15-minute net.
TIMED = (Due.TIMEOUT, Due.START_DEADLINE)


def next_timed(job: Job, settings: Settings) -> tuple[Due, datetime] | None:
    """The first deadline of the job's current attempt that a timer enforces, and when it falls
    due; None when none is left (the attempt ended, its stop is asked, or it has none)."""
    due = deadlines(job, settings)
    if not job.spec.start_timeout_seconds:
        due.pop(Due.START_DEADLINE, None)
    found = [(due[d], n, d) for n, d in enumerate(TIMED) if d in due]
    if not found:
        return None
    at, _, which = min(found)
    return which, at


def deadlines(
    job: Job, settings: Settings, booked_until: datetime | None = None
) -> dict[Due, datetime]:
    """Every deadline of a job: the one rule both the reconciler and the API's view use. Nothing
    is due before the reconciler's backoff of the job ends. `booked_until`: no launch slot is
    booked later than this (the governor says; None: none is booked)."""
    due = _deadlines(job, settings, booked_until)
    until = reconcile_backoff_until(job, settings)
    if until is None:
        return due
    return {what: max(at, until) for what, at in due.items()}


def _deadlines(job: Job, settings: Settings, booked_until: datetime | None) -> dict[Due, datetime]:
    if job.status.terminal or job.status == W:
        return {}  # a WAITING job is owed nothing until its dependencies end (no clock runs)
    cur = job.current
    grace = timedelta(seconds=settings.decision_grace_seconds)
    updated = parse_iso(job.updated_at) or parse_iso(job.created_at)
    assert updated is not None
    if job.is_array:  # no task to watch: its fan-out is what may have been lost
        quiet = timedelta(seconds=settings.quiet_after_seconds)
        return {Due.TEND: (last_news(job) or updated) + quiet}
    if cur.awaiting_decision:
        return {Due.REDECIDE: (parse_iso(cur.stopped_at) or updated) + grace}
    if job.status == JobStatus.PENDING and not cur.task_arn:
        # Its launch may be booked (nothing written on the job: usecases/launch.book_launch),
        # for no later than the horizon from when it was due, nor than the governor has booked.
        due_at = parse_iso(job.not_before) or updated
        booked = timedelta(seconds=settings.launch_booking_seconds)
        if booked_until is not None:
            due_at = max(due_at, min(due_at + booked, booked_until))
        return {Due.LAUNCH: due_at + grace}
    due: dict[Due, datetime] = {}
    if job.stop_request is None and job.status in (S, R):
        began = parse_iso(cur.started_at)
        launched = parse_iso(cur.launched_at) or updated
        if job.spec.timeout_seconds:
            due[Due.TIMEOUT] = (began or launched) + timedelta(seconds=job.spec.timeout_seconds)
        if began is None and job.status == S:
            limit = job.spec.start_timeout_seconds or settings.default_start_timeout_seconds
            due[Due.START_DEADLINE] = launched + timedelta(seconds=limit)
    due[Due.LOOK] = (last_news(job) or updated) + timedelta(seconds=settings.quiet_after_seconds)
    return due

"""Array jobs after POST: making and launching the children, cancelling them when the array
fails or is cancelled, settling each child's end into the counters and writing the parent's
status (its rules: core/arrays.py; its counters: adapters/arrays.py).

All of an array's work goes through one message, FANOUT (the parent's id), on the launch queue:
`tend` reads the parent and its counters and does what they say. It is safe to repeat and to
run twice at once:

- Children are made before their indexes are claimed, by id (<parent>-<i>, a conditional put)
  and held (not_before HOLD_SECONDS ahead): a tend that stops between the two leaves children
  the next claim of those indexes launches; one that stops after the claim leaves held children
  the reconciler launches once their hold ends. A child is never launched twice (its attempt's
  clientToken), an index never claimed twice (one conditional write on the counters).
- A child's end is one ADD on the counters (`settle`, from the table's stream); the ADD that
  frees a slot, crosses the failure threshold or finishes the array hands off a FANOUT.
- Statuses a count decides (FAILED past the threshold, the array's end) are written only after
  an exact recount from the children themselves: a redelivered stream record may have counted
  a child twice.
- Closing (a cancel, or more failures than tolerated): the indexes not yet launched are taken
  and counted CANCELLED in one write, then every unfinished child is cancelled through the
  usual cancel path, CANCEL_WINDOW ids per message, a cursor in the message.

The reconciler hands a quiet parent off again (lifecycle.Due.TEND): a lost message delays an
array, never strands it.
"""

from __future__ import annotations

import math
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta

from jobtracker.core import lifecycle
from jobtracker.core.arrays import (
    ArraySpec,
    Summary,
    failed_past_tolerance,
    launchable,
    parent_status,
    recount,
    redo_of,
    spec_of,
)
from jobtracker.core.dependencies import for_children
from jobtracker.core.domain import Job, JobStatus, StopRequest, child_id, iso
from jobtracker.core.errors import Conflict, NotFound
from jobtracker.observability import count, logger
from jobtracker.usecases.dependencies import child_start, hand_off_release, wire
from jobtracker.usecases.handoff import to_launch_queue
from jobtracker.usecases.ports import ArrayExists, JobExists, Work, work_message
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps

C = JobStatus.CANCELLED

# Children made and launched per message: a burst's worth. 100 RunTasks take about 10 s, well
# inside the decider's 60 s; a paced fan-out's hop (a 1 s delay, then its launches) carries what
# the launch rate gave it meanwhile, where 25 a hop would cap it at 25 per hop's time.
CHUNK = 100
# Children read (and the unfinished ones cancelled) per message of a closing array.
CANCEL_WINDOW = 200
# A child made but not yet claimed waits this long before the reconciler would launch it on its
# own (only a tend that stopped right after its claim leaves one for it).
HOLD_SECONDS = 15 * 60


def hand_off(parent_id: str, deps: Deps, start: int | None = None, delay: float = 0.0) -> None:
    """A FANOUT for the parent: tend it (from `start`, a closing array's cancel cursor), at
    once or in `delay` seconds (when the launch rate gives it its next slots)."""
    message = work_message(Work.FANOUT, parent_id, 1)
    if start is not None:
        message["start"] = start
    to_launch_queue(deps, message, math.ceil(delay) if delay > 0 else 0)


def take_slots(deps: Deps, wanted: int) -> tuple[int, float]:
    """Up to `wanted` of the launch governor's slots now, in one write: how many, and (when
    fewer) how long until the next. The fan-out launches only what it holds slots for, and
    comes back when the rate gives it more: the array, not the launch queue, holds its waiting
    children, so a 10,000-child array never wakes thousands of launches at once to refuse most
    of them."""
    granted, wait = deps.governor.acquire_many(deps.clock(), wanted)
    if granted < wanted:
        count("ArrayLaunchesPaced")
    return granted, wait


def new_child(parent: Job, index: int, now: datetime) -> Job:
    """Child `index` of an array: the parent's spec without `array`, its own job, held until
    its index is claimed."""
    spec = spec_of(parent.spec.array)
    assert spec is not None
    job_id = child_id(parent.job_id, index)
    child = Job(
        job_id=job_id,
        spec=replace(parent.spec, array=None, depends_on=for_children(parent)),
        status=JobStatus.PENDING,
        created_at=iso(now) or "",
        updated_at=iso(now) or "",
        caller=parent.caller,
        parent_id=parent.job_id,
        array_index=index,
        array_size=spec.size,
        not_before=iso(now + timedelta(seconds=HOLD_SECONDS)),
        status_reason="waiting for its turn in the array",
    )
    child.attempts[1] = lifecycle.new_attempt(job_id, 1, now)
    return child


def start_array(parent: Job, deps: Deps) -> None:
    """The array's counters (once), then, unless it waits on its dependencies, its first
    FANOUT. Safe to repeat (a replayed POST)."""
    spec = spec_of(parent.spec.array)
    assert spec is not None
    with suppress(ArrayExists):  # made by the first try of a replayed POST
        deps.arrays.create(parent.job_id, spec)
    if parent.status == JobStatus.PENDING:
        hand_off(parent.job_id, deps)


def never_started(parent: Job, deps: Deps) -> None:
    """An array that ended before its fan-out began (cancelled while WAITING, or by a
    dependency): every index counted CANCELLED."""
    spec = spec_of(parent.spec.array)
    assert spec is not None
    found = deps.arrays.read(parent.job_id)
    if found is not None and not found[1].closed:
        deps.arrays.close(parent.job_id, found[1].launched, spec.size)


def handle_fanout(parent_id: str, start: int | None, deps: Deps | None = None) -> str:
    deps = deps or default_deps()
    parent = deps.repo.get(parent_id)
    if parent is None or not parent.is_array:
        return "unknown-job"
    spec = spec_of(parent.spec.array)
    assert spec is not None
    found = deps.arrays.read(parent_id)
    if found is None:  # POST stopped between the parent and its counters
        start_array(parent, deps)
        return "started"
    _, summary = found
    if start is not None:
        return _cancel_window(parent, start, deps)
    return tend(parent, spec, summary, deps)


def tend(parent: Job, spec: ArraySpec, summary: Summary, deps: Deps) -> str:
    """What the counters say is due: close, finish or launch more."""
    if parent.status in (JobStatus.SUCCEEDED, JobStatus.CANCELLED):
        return "ended"  # counted exactly when it ended
    if failed_past_tolerance(spec, summary) and parent.status != JobStatus.FAILED:
        summary = _exact(parent, summary, deps)  # a child counted twice must not fail it
        if failed_past_tolerance(spec, summary):
            verdict = parent_status(spec, summary)
            parent = _move(parent, verdict.status, verdict.reason, deps)
    closing = parent.stop_request == StopRequest.CANCEL or parent.status == JobStatus.FAILED
    if closing and not summary.closed:
        return _close(parent, spec, summary, deps)
    if summary.done >= spec.size:
        return _finish(parent, spec, summary, deps)
    if closing:
        return "closing"  # its children are being cancelled; the last one's end finishes it
    if summary.round:
        return _relaunch_more(parent, spec, summary, deps)
    return _launch_more(parent, spec, summary, deps)


def _slots(parent: Job, spec: ArraySpec, summary: Summary, deps: Deps) -> tuple[int, float]:
    """How many children to launch now: what the window has room for, as far as the launch
    rate gives slots (none: the fan-out comes back when it does); and the wait for more."""
    more = min(CHUNK, launchable(spec, summary))
    if more <= 0:
        return 0, 0.0  # a child's end frees the next slot (settle hands off)
    more, wait = take_slots(deps, more)
    if more == 0:
        hand_off(parent.job_id, deps, delay=wait)
    return more, wait


def _unlaunched(child: Job) -> bool:
    """A child made (or made PENDING again) whose attempt has no task yet."""
    return child.status == JobStatus.PENDING and not child.current.task_arn


def _launch_more(parent: Job, spec: ArraySpec, summary: Summary, deps: Deps) -> str:
    # Children that wait on others (per-index, sequential) take no launch slot until their
    # release, which launches them through the usual path (usecases/dependencies.py).
    waits = for_children(parent) is not None
    if waits:
        more, wait = min(CHUNK, launchable(spec, summary)), 0.0
    else:
        more, wait = _slots(parent, spec, summary, deps)
    if more <= 0:
        return "paced" if wait else "full"
    seen, now = summary.launched, deps.clock()
    # Each child as made here (None: made before, by a tend that stopped before its claim, or
    # is making it now: read again before it is launched).
    children: dict[str, Job | None] = {}
    for index in range(seen, seen + more):
        child = new_child(parent, index, now)
        if waits:
            child_start(child, deps)
        try:
            deps.repo.create(child)
            children[child.job_id] = child
        except JobExists:
            children[child.job_id] = None
    if not deps.arrays.claim(parent.job_id, seen, more):
        count("ArrayClaimsContended")
        return "contended"  # another tend took these indexes, and launches them
    count("ArrayChildrenLaunched", more)
    if parent.status == JobStatus.PENDING:
        parent = _move(parent, JobStatus.RUNNING, None, deps)
    if waits:
        _start_waiting(parent, spec, children, deps)
    else:
        _launch_claimed(parent, spec, children, deps, wait)
    return "launched"


def _start_waiting(parent: Job, spec: ArraySpec, made: dict[str, Job | None], deps: Deps) -> None:
    """Claimed children that wait on others: each wired (what it waits on read again after it
    was stored) or, if it may run already, launched under the governor; then go on. As in
    _launch_claimed, a child as this tend made it is used without a read."""
    from jobtracker.usecases.launch import launch_attempt

    for job_id, known in made.items():
        child = known or deps.repo.get(job_id)
        if child is None:
            continue
        if child.status == JobStatus.WAITING:
            wire(child, deps)
        elif _unlaunched(child):
            launch_attempt(child, deps)
    _go_on(parent, spec, deps, 0.0)


def _launch_claimed(
    parent: Job, spec: ArraySpec, made: dict[str, Job | None], deps: Deps, wait: float
) -> None:
    """Launch the children whose indexes were just claimed (each with the governor's slot taken
    for it), then go on. A child as this tend made it is launched without a read: one that
    moved since (cancelled) makes its launch's write refuse, and its task is stopped
    (launch_attempt); a child made before is read first."""
    from jobtracker.usecases.launch import launch_attempt

    for job_id, known in made.items():
        child = known or deps.repo.get(job_id)
        if child is not None and _unlaunched(child):
            launch_attempt(child, deps, slot_held=True)
    _go_on(parent, spec, deps, wait)


def _go_on(parent: Job, spec: ArraySpec, deps: Deps, wait: float) -> None:
    """After a claim: the next chunk in a message of its own, if there is room for one now.
    Read after the claim, so an end that came meanwhile is seen here, or its settle saw the
    window full and hands off itself (settle): no end's freed slot goes unused."""
    found = deps.arrays.read(parent.job_id)
    if found is not None and launchable(spec, found[1]) > 0:
        hand_off(parent.job_id, deps, delay=wait)


def _relaunch_more(parent: Job, spec: ArraySpec, summary: Summary, deps: Deps) -> str:
    """A retry round: walk the indexes from the cursor; each child to run again (or never made:
    an index its failure closed) is made PENDING again and launched, within the window."""
    if summary.cursor >= spec.size:
        return "full"
    more, wait = _slots(parent, spec, summary, deps)
    if more == 0:
        return "paced" if wait else "full"
    now = deps.clock()
    hold = now + timedelta(seconds=HOLD_SECONDS)
    reason = f"run again by retry-failed of array {parent.job_id} (round {summary.round})"
    picked: list[str] = []
    at = summary.cursor
    while at < spec.size and len(picked) < more:
        window = range(at, min(spec.size, at + CANCEL_WINDOW))
        found = {c.array_index: c for c in deps.repo.children(parent.job_id, window, True)}
        for index in window:
            at = index + 1
            child = found.get(index)
            if child is None:
                made = new_child(parent, index, now)
                with suppress(JobExists):
                    deps.repo.create(made)
                picked.append(made.job_id)
            elif child.status in summary.redo:
                _retry_child(child, reason, hold, deps)
                picked.append(child.job_id)
            elif _unlaunched(child):
                picked.append(child.job_id)  # run again by a tend that stopped before its claim
            if len(picked) == more:
                break
    if not deps.arrays.claim(parent.job_id, summary.launched, len(picked), cursor=at):
        count("ArrayClaimsContended")
        return "contended"
    _launch_claimed(parent, spec, dict.fromkeys(picked), deps, wait)
    return "relaunched"


def _retry_child(child: Job, reason: str, hold: datetime, deps: Deps) -> None:
    def plan(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        assert j is not None
        return lifecycle.child_retried(j, reason, deps.clock(), hold), None

    write(deps, child.job_id, plan, known=child)


def retry_failed(parent_id: str, deps: Deps | None = None) -> Job:
    """A finished array's retry round: its failed children (and, of an array that failed, every
    child that did not succeed) run again, same indexes, same parent, within its window. The
    parent is RUNNING again; its summary follows."""
    deps = deps or default_deps()
    parent = deps.repo.get(parent_id)
    if parent is None:
        raise NotFound(f"no job with id {parent_id!r}")
    spec = spec_of(parent.spec.array)
    found = deps.arrays.read(parent_id) if spec else None
    if spec is None or found is None:
        raise Conflict(f"{parent_id} is not an array job", code="not_an_array")
    if parent.status not in lifecycle.ARRAY_REOPENED.sources:
        raise Conflict(
            f"only a finished array that SUCCEEDED or FAILED runs its failures again; "
            f"{parent_id} is {parent.status.value}"
        )
    summary = _exact(parent, found[1], deps)
    if summary.done < spec.size:
        raise Conflict(f"{spec.size - summary.done} of its children are still stopping")
    redo = redo_of(parent.status)
    again = sum(summary.count(s) for s in redo)
    if again == 0:
        raise Conflict(f"{parent_id} has no failed children to run again")
    if not deps.arrays.reopen(parent_id, summary, redo):
        raise Conflict("the array changed meanwhile (another retry-failed?); look again")
    count("ArrayRetryRounds")
    reason = f"running {again} of {spec.size} children again (retry-failed)"

    def plan(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        assert j is not None
        return lifecycle.array_reopened(j, reason, deps.clock()), None

    stored, _, _ = write(deps, parent_id, plan, known=parent)
    hand_off(parent_id, deps)
    return stored or parent


def _close(parent: Job, spec: ArraySpec, summary: Summary, deps: Deps) -> str:
    if not deps.arrays.close(parent.job_id, summary.launched, spec.size):
        hand_off(parent.job_id, deps)  # a claim moved first: close from what it left
        return "contended"
    count("ArraysClosed")
    made = summary.launched
    if made == 0:
        # Nothing was ever made: the array is finished now (every index CANCELLED).
        closed = replace(summary, launched=spec.size, finished={C: spec.size}, closed=True)
        return _finish(parent, spec, closed, deps)
    hand_off(parent.job_id, deps, start=0)
    return "closed"


def _cancel_window(parent: Job, start: int, deps: Deps) -> str:
    """Cancel the unfinished children among CANCEL_WINDOW indexes from `start`, then hand the
    next window off."""
    from jobtracker.usecases.cancel import cancel_job

    spec = spec_of(parent.spec.array)
    assert spec is not None
    end = min(spec.size, start + CANCEL_WINDOW)
    reason = _close_reason(parent)
    for child in deps.repo.children(parent.job_id, range(start, end), consistent=True):
        if child.status.terminal:
            continue
        try:
            cancel_job(child.job_id, reason, deps)
            count("ArrayChildrenCancelled")
        except (Conflict, NotFound):
            pass  # it ended meanwhile
    if end < spec.size:
        hand_off(parent.job_id, deps, start=end)
    return "cancelling"


def _close_reason(parent: Job) -> str:
    if parent.status == JobStatus.FAILED:
        return f"array {parent.job_id} failed: {parent.status_reason}"
    return f"array {parent.job_id} cancelled"


def _finish(parent: Job, spec: ArraySpec, summary: Summary, deps: Deps) -> str:
    """Every index is finished (as counted): count them exactly, then the parent's end."""
    exact = _exact(parent, summary, deps)
    if exact.done < spec.size:
        return "recounted"  # a child was counted twice; its siblings are still to end
    verdict = parent_status(spec, exact, parent.stop_request == StopRequest.CANCEL)
    _move(parent, verdict.status, verdict.reason, deps)
    return "finished"


def _exact(parent: Job, summary: Summary, deps: Deps) -> Summary:
    """The counters as the children say (one consistent read of each), written back."""
    spec = spec_of(parent.spec.array)
    assert spec is not None
    indexes = range(spec.size if summary.round else summary.launched)
    children = deps.repo.children(parent.job_id, indexes, consistent=True)
    exact = recount(summary, {c.array_index: c.status for c in children})
    if exact.finished != summary.finished:
        count("ArrayRecountsCorrected")
        logger.info(
            "array counters corrected",
            extra={"job_id": parent.job_id, "counted": str(summary), "exact": str(exact)},
        )
        deps.arrays.reset(parent.job_id, exact)
    return exact


def _move(parent: Job, target: JobStatus, reason: str | None, deps: Deps) -> Job:
    def plan(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        assert j is not None
        return lifecycle.array_moved(j, target, reason, deps.clock()), None

    stored, _, _ = write(deps, parent.job_id, plan, known=parent)
    return stored or parent


def settle(child: Job, previous: JobStatus | None, deps: Deps | None = None) -> str:
    """A child's status change, from the table's stream: its end is counted on its array, and
    the count that frees a slot, crosses the failure threshold or finishes the array hands the
    parent off. Anything else (not a child, not its end) does nothing."""
    if child.parent_id is None or not child.status.terminal:
        return "skipped"
    if previous is not None and previous.terminal:
        return "skipped"  # a terminal status never changes; this is not its end
    deps = deps or default_deps()
    spec, summary = deps.arrays.finish(child.parent_id, child.status)
    crossed = child.status in (JobStatus.FAILED, JobStatus.TIMED_OUT) and (
        summary.failures == spec.tolerated + 1
    )
    # The end that opens a full window: while the window had room, a fan-out is under way
    # already (it hands itself off while there is room after its claim: _go_on).
    before = replace(
        summary, finished={**summary.finished, child.status: summary.count(child.status) - 1}
    )
    opened = launchable(spec, summary) > 0 and launchable(spec, before) == 0
    if crossed or summary.done >= spec.size or opened:
        hand_off(child.parent_id, deps)
    if summary.per_index_dependents:
        hand_off_release(child.job_id, deps)  # child i of each per-index dependent array
    return "settled"

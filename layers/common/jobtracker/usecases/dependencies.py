"""Job dependencies (issue 23): checking them at submission, wiring a dependent to what it
waits on, and releasing (or cancelling) dependents when a job ends. The rules are
core/dependencies.py's; each move is one guarded write (lifecycle.dependency_ended).

How a dependent is found without a scan, and why nothing is missed:

- A dependent names jobs (mode `job`): one edge item per dependency (store.add_edges, found by
  the by_dependency index), written after the dependent and before the dependency is marked
  `has_dependents` (lifecycle.depended_on, one write at its first dependent). A dependency's end
  whose stream record carries the mark hands its dependents a RELEASE (edge/stream.py), a page
  of them per message on the launch queue, so 10,000 dependents launch under the governor.
- After its edges and marks, the dependent reads its dependencies again ("write, then
  check"): a dependency that ended before its mark was written is seen here; one that ends
  after carries the mark. Both may release it; the guard makes the second a no-op.
- An array whose children wait on another's index by index (mode `per_index`) is noted on that
  array's counters (arrays.add_dependent), which every child's end reads anyway (settle): child
  i's end releases child i of each such array. The dependent child, made later by its own
  array's fan-out, reads child i after it is made (the same write-then-check).
- A sequential array's child i is made only after child i-1 ended (its window is one), and
  reads it then.
- The reconciler reads the WAITING jobs every WAITING_SWEEP_MINUTES and checks each open
  dependency again: a release lost to a crash is late, never missing.
- A page releases its dependents first (one read for the page, one write each), then books
  their launch slots in one governor write and hands each launch to the launch queue for its
  slot's time: releasing never waits for launches (a page that launched inline held the
  pages behind it, issue 23's p95). Only what this handling released is booked, so a page
  handled twice books nothing twice; a dependent released by a try that crashed before its
  booking is launched by the reconciler (a PENDING job with no task, lifecycle.deadlines).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from jobtracker.core import dependencies as rules
from jobtracker.core import lifecycle
from jobtracker.core.dependencies import Mode
from jobtracker.core.domain import (
    CHILD_ID,
    Job,
    JobStatus,
    Outcome,
    iso,
    minted_at,
)
from jobtracker.core.errors import invalid
from jobtracker.observability import count, logger
from jobtracker.usecases.handoff import to_launch_queue
from jobtracker.usecases.ports import Work, work_message
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps

# Dependents released per RELEASE message: a burst's worth of launches (as an array's CHUNK).
PAGE = 100
# A WAITING job's dependencies are read again by the reconciler this often (it runs every
# minute): a backstop for a lost release, not the path a release takes.
WAITING_SWEEP_MINUTES = 10
# Children of a per-index dependent array checked per message when its source array closed.
SWEEP_WINDOW = 200
# Arrays that may wait on one array index by index (its counters item names them all).
MAX_PER_INDEX_DEPENDENTS = 25


# ---- submission -----------------------------------------------------------------------------


def check(job: Job, deps: Deps) -> dict[str, Job]:
    """The jobs a new job names, read (consistently): each must exist, and a per-index one must
    be an array of the dependent array's size. Raises a 422 naming the entry; writes nothing."""
    declared = rules.declared(job)
    stored = deps.repo.many((d.job_id for d in declared), consistent=True)
    named: dict[str, Job] = {}
    for n, dep in enumerate(declared):
        where = f"depends_on[{n}].job_id"
        if dep.job_id == job.job_id:
            raise invalid(where, "a job cannot depend on itself")
        found = stored.get(dep.job_id)
        if found is None:
            raise invalid(where, _unknown(dep.job_id, deps))
        if dep.mode == Mode.PER_INDEX:
            _check_per_index(job, found, n, deps)
        named[dep.job_id] = found
    return named


def _unknown(job_id: str, deps: Deps) -> str:
    """No such job: never made, or (its id says it was made before the retention) expired."""
    made = minted_at(job_id)
    days = deps.settings.retention_days
    if made is not None and days and (deps.clock() - made).days >= days:
        return (
            f"job {job_id} ended and its record expired (JobRetentionDays is {days}): "
            "what it ended as is no longer known, so nothing can wait on it"
        )
    return f"no job with id {job_id!r} (a dependency must exist when its dependent is submitted)"


def _check_per_index(job: Job, source: Job, n: int, deps: Deps) -> None:
    from jobtracker.core.arrays import spec_of

    where = f"depends_on[{n}].mode"
    mine, theirs = spec_of(job.spec.array), spec_of(source.spec.array)
    if mine is None:
        raise invalid(where, "per_index is for an array that depends on an array")
    size = mine.size
    if theirs is None or theirs.size != size:
        raise invalid(where, f"per_index needs {source.job_id} to be an array of size {size}")
    found = deps.arrays.read(source.job_id)
    if found is not None and len(found[1].per_index_dependents) >= MAX_PER_INDEX_DEPENDENTS:
        raise invalid(
            where, f"{source.job_id} has {MAX_PER_INDEX_DEPENDENTS} per-index dependents already"
        )


def initial(job: Job, statuses: dict[str, JobStatus | None], now: datetime) -> None:
    """A new job's status from what it waits on, as read: WAITING (on the open ones), PENDING
    (every condition met), or CANCELLED at once (one can never be met): never launched."""
    begun = rules.start(job, statuses)
    if begun.never is not None:
        job.status = JobStatus.CANCELLED
        job.status_reason = rules.never_reason(*begun.never)
        job.finished_at = iso(now)
        job.current.outcome, job.current.rule = Outcome.CANCELLED, rules.RULE
        count("DependentsCancelled")
    elif begun.waiting_on:
        job.status = JobStatus.WAITING
        job.waiting_on = begun.waiting_on
        job.status_reason = rules.waiting_reason(job, begun.waiting_on)
    elif statuses:
        job.released_at = iso(now)  # every condition met already


def wire(job: Job, deps: Deps) -> Job:
    """After the dependent is stored: its edges, its dependencies marked, then each open one
    read again (what ended meanwhile releases it here). Safe to repeat (a replayed POST). A
    dependency that had ended gets its edge and mark too: its page lists every dependent."""
    if job.parent_id is None:
        named = [d.job_id for d in rules.dependencies_of(job)]
        if named:
            deps.repo.add_edges(job.job_id, named, iso(deps.clock()) or "")
        for dependency_id in named:
            _mark(dependency_id, deps)
        for source in rules.per_index_sources(job):
            deps.arrays.add_dependent(source, job.job_id)
            _mark(source, deps)  # its end sweeps the indexes it never made (handle_release)
    if job.status != JobStatus.WAITING:
        return job
    return recheck(job, deps)


def _mark(dependency_id: str, deps: Deps) -> None:
    def plan(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        return (lifecycle.depended_on(j, deps.clock()) if j is not None else None), None

    write(deps, dependency_id, plan)


def recheck(job: Job, deps: Deps) -> Job:
    """Read each dependency the job still waits on and apply what has ended."""
    for dependency_id in sorted(job.waiting_on):
        status, known = status_of(dependency_id, deps)
        if not known or (status is not None and not status.terminal):
            continue
        job = resolve(job.job_id, dependency_id, status, deps, job) or job
        if job.status != JobStatus.WAITING:
            break
    return job


def status_of(job_id: str, deps: Deps) -> tuple[JobStatus | None, bool]:
    """A dependency's status, and whether it is known: (None, True) for a job that is gone or
    an index its array closed before making it; (None, False) for a child not made yet."""
    found = deps.repo.get(job_id)
    if found is not None:
        return found.status, True
    match = CHILD_ID.match(job_id)
    if match is None:
        return None, True
    parent = deps.repo.get(match.group("parent"))
    if parent is None or parent.status.terminal:
        return None, True
    return None, False


# ---- release --------------------------------------------------------------------------------


def resolve(
    dependent_id: str,
    dependency_id: str,
    status: JobStatus | None,
    deps: Deps,
    known: Job | None = None,
) -> Job | None:
    """`dependency_id` ended `status`: the dependent, if it waits on it, counts it; released,
    it begins (launch, or its array's fan-out); cancelled, its own dependents follow (its end
    is a stream record like any other)."""
    job, released = settle(dependent_id, dependency_id, status, deps, known)
    if job is not None and released:
        from jobtracker.usecases.launch import launch_attempt

        return launch_attempt(job, deps)
    return job


def settle(
    dependent_id: str,
    dependency_id: str,
    status: JobStatus | None,
    deps: Deps,
    known: Job | None = None,
) -> tuple[Job | None, bool]:
    """resolve's write and what follows it, but for a plain job's launch: the job, and whether
    this call released a plain job (the caller launches it)."""
    now = deps.clock()

    def plan(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        if j is None:
            return None, None
        return lifecycle.dependency_ended(j, dependency_id, status, now), None

    job, _, written = write(deps, dependent_id, plan, known=known)
    if job is None or not written:
        return job, False
    if job.status == JobStatus.PENDING:
        count("DependentsReleased")
        if job.is_array:  # its fan-out begins (counters made at its submission)
            from jobtracker.usecases.arrays import hand_off

            hand_off(job.job_id, deps)
            return job, False
        return job, True
    if job.status == JobStatus.CANCELLED:
        count("DependentsCancelled")
        if job.is_array:
            from jobtracker.usecases.arrays import never_started

            never_started(job, deps)
    return job, False


def hand_off_release(
    job_id: str,
    deps: Deps,
    dependents: list[str] | None = None,
    sweep: str | None = None,
    start: int | None = None,
) -> None:
    """A RELEASE for `job_id` (it ended) on the launch queue: with no page, the one that finds
    its dependents and sends their pages; with `dependents`, one page; with `sweep`, a window
    of a per-index dependent array's children from `start`."""
    message = work_message(Work.RELEASE, job_id, 1)
    if dependents is not None:
        message["dependents"] = dependents
    if sweep is not None:
        message["sweep"], message["start"] = sweep, start or 0
    to_launch_queue(deps, message)


def handle_release(
    job_id: str,
    dependents: list[str] | None = None,
    sweep: str | None = None,
    start: int | None = None,
    deps: Deps | None = None,
) -> str:
    """`job_id` ended: its dependents released (or cancelled), a page of PAGE per message.

    The first message finds them all (the index's pages, then the per-index arrays' child of
    the same index) and sends every page at once: no page sends the next, so a message handled
    twice (a retry) repeats its own work, never a second chain of pages. An array that closed
    before making every child also gets, per per-index dependent array, a sweep of its waiting
    children, a window per message (a child never made never ends)."""
    deps = deps or default_deps()
    ended = deps.repo.get(job_id)
    status = ended.status if ended is not None else None
    if ended is not None and not ended.status.terminal:
        return "not-ended"  # (an array's retry round reopened it: its next end releases)
    if sweep is not None:
        return _sweep_window(job_id, sweep, start or 0, deps)
    if dependents is not None:
        # one read for the page (consistent: a stale copy would only cost a refused guard)
        known = deps.repo.many(dependents, consistent=True)
        released = []
        for dependent_id in dependents:
            moved, now_released = settle(
                dependent_id, job_id, status, deps, known.get(dependent_id)
            )
            if moved is not None and now_released:
                released.append(moved)
        _launch_released(released, deps)
        count("DependentsLookedAt", len(dependents))
        return "released"
    found: list[str] = []
    token: str | None = None
    while True:
        page, token = deps.repo.dependents(job_id, PAGE * 10, token)
        found += page
        if token is None:
            break
    if ended is not None and ended.parent_id is not None:
        found += per_index_waiters(ended, deps)
    for at in range(0, len(found), PAGE):
        hand_off_release(job_id, deps, dependents=found[at : at + PAGE])
    counters = deps.arrays.read(job_id) if ended is not None and ended.is_array else None
    if counters is not None and counters[1].closed:
        spec, summary = counters
        for dependent in sorted(summary.per_index_dependents):
            for at in range(0, spec.size, SWEEP_WINDOW):
                hand_off_release(job_id, deps, sweep=dependent, start=at)
    return "paged"


def _launch_released(released: list[Job], deps: Deps) -> None:
    """A page's released dependents, once the whole page is released: their governor slots
    booked in one write, each launch handed to the launch queue for its slot's time (so the
    launches go in parallel, off this page, and never ask again); those past the booking
    horizon wait, spread at the launch rate, and ask again."""
    from jobtracker.usecases.launch import book_launch, reserve_slots, wait_for_rate

    if not released:
        return
    slots, wait = reserve_slots(deps, len(released))
    for job, at in zip(released, slots, strict=False):
        book_launch(job, at, deps)
    for n, job in enumerate(released[len(slots) :]):
        wait_for_rate(job, wait + n / deps.settings.launch_rate, deps)


def _sweep_window(source_id: str, dependent_id: str, start: int, deps: Deps) -> str:
    """The waiting children of a per-index dependent array, SWEEP_WINDOW indexes from `start`,
    each checked again against its index of `source_id` (which closed)."""
    from jobtracker.core.arrays import spec_of

    dependent = deps.repo.get(dependent_id)
    spec = spec_of(dependent.spec.array) if dependent is not None else None
    if spec is None:
        return "unknown-job"
    window = range(start, min(spec.size, start + SWEEP_WINDOW))
    for child in deps.repo.children(dependent_id, window, consistent=True):
        if child.status == JobStatus.WAITING:
            recheck(child, deps)
    return "swept"


def per_index_waiters(child: Job, deps: Deps) -> list[str]:
    """Child i of each array that waits on `child`'s array index by index."""
    from jobtracker.core.domain import child_id

    assert child.parent_id is not None
    found = deps.arrays.read(child.parent_id)
    if found is None:
        return []
    return [child_id(d, child.array_index) for d in sorted(found[1].per_index_dependents)]


def sweep(jobs: Iterable[Job], deps: Deps) -> int:
    """The reconciler's backstop: each WAITING job's open dependencies read again. Returns how
    many jobs moved."""
    moved = 0
    for job in jobs:
        try:
            after = recheck(job, deps)
        except Exception:
            count("ReconcilerErrors")
            logger.exception("checking a waiting job failed", extra={"job_id": job.job_id})
            continue
        if after.status != JobStatus.WAITING or after.waiting_on != job.waiting_on:
            moved += 1
            logger.warning("a lost release caught", extra={"job_id": job.job_id})
    return moved


def child_start(child: Job, deps: Deps) -> None:
    """A new child of an array whose children wait (per-index, sequential): its status from
    its dependencies as read, before it is stored (a child not made yet is open)."""
    statuses: dict[str, JobStatus | None] = {}
    for dep in rules.dependencies_of(child):
        status, known = status_of(dep.job_id, deps)
        if known:
            statuses[dep.job_id] = status
    initial(child, statuses, deps.clock())

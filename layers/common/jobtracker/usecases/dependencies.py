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
    is_child_id,
    iso,
    minted_at,
)
from jobtracker.core.errors import invalid
from jobtracker.observability import count, logger
from jobtracker.usecases.ports import Work, work_message
from jobtracker.usecases.write import write
from jobtracker.wiring import Deps, default_deps

# Dependents released per RELEASE message: a burst's worth of launches (as an array's CHUNK).
PAGE = 100
# A WAITING job's dependencies are read again by the reconciler this often (it runs every
# minute): a backstop for a lost release, not the path a release takes.
WAITING_SWEEP_MINUTES = 10
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
    where = f"depends_on[{n}].mode"
    size = (job.spec.array or {}).get("size")
    if size is None:
        raise invalid(where, "per_index is for an array that depends on an array")
    if not source.is_array or (source.spec.array or {}).get("size") != size:
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
    now = deps.clock()

    def plan(j: Job | None) -> tuple[lifecycle.Change | None, None]:
        if j is None:
            return None, None
        return lifecycle.dependency_ended(j, dependency_id, status, now), None

    job, _, written = write(deps, dependent_id, plan, known=known)
    if job is None or not written:
        return job
    if job.status == JobStatus.PENDING:
        count("DependentsReleased")
        if job.is_array:  # its fan-out begins (counters made at its submission)
            from jobtracker.usecases.arrays import hand_off

            hand_off(job.job_id, deps)
            return job
        from jobtracker.usecases.launch import launch_attempt

        return launch_attempt(job, deps)
    if job.status == JobStatus.CANCELLED:
        count("DependentsCancelled")
        if job.is_array:
            from jobtracker.usecases.arrays import never_started

            never_started(job, deps)
    return job


def hand_off_release(job_id: str, deps: Deps, token: str | None = None) -> None:
    """A RELEASE of the dependents of `job_id` (it ended), on the launch queue."""
    if not deps.settings.launch_queue_url:
        raise RuntimeError("LAUNCH_QUEUE_URL is not configured")
    message = work_message(Work.RELEASE, job_id, 1)
    if token is not None:
        message["token"] = token
    deps.queue.send(deps.settings.launch_queue_url, message)


def handle_release(job_id: str, token: str | None, deps: Deps | None = None) -> str:
    """A page of the dependents of `job_id`, which ended: each resolved; the next page handed
    off. A child's end also releases its index in every per-index dependent array."""
    deps = deps or default_deps()
    ended = deps.repo.get(job_id)
    status = ended.status if ended is not None else None
    if ended is not None and not ended.status.terminal:
        return "not-ended"  # (an array's retry round reopened it: its next end releases)
    waiting, next_token = deps.repo.dependents(job_id, PAGE, token)
    if token is None and is_child_id(job_id) and ended is not None:
        waiting += per_index_waiters(ended, deps)  # (once: with the first page)
    for dependent_id in waiting:
        resolve(dependent_id, job_id, status, deps)
    if next_token is not None:
        hand_off_release(job_id, deps, next_token)
    count("DependentsLookedAt", len(waiting))
    return "released"


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

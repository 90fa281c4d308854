"""Array jobs: a parent job and its indexed children (issue 22). The rules here are the parent's
whole logic as data and pure functions over its counters: what an array may ask for, how many
of its children end as what, and the parent status those counts mean. No I/O.

The shape chosen (the issue's "where today's shape pushes back"):

- The parent keeps counters, never a list of its children: `launched` (children made so far,
  in index order, each made when a slot is free) and one count per final child status. A child
  is an item of its own only once it is launched, so an array of 10,000 is one item at POST,
  and children that wait are not items the reconciler reads or `?status=` lists return.
- `max_running` is the parent's counters too: running = launched - finished, so a child may be
  launched while `launched - finished(total) < max_running` (one conditional write on the
  parent: no holder set that grows with the array).
- A child's final status reaches the parent as one ADD to its counter (the settle step on the
  table's stream). At-least-once delivery may count a child twice: the counters are exact again
  when the array looks finished, from one read of its children (`recount`), before the parent's
  final status is written. So `summary` is live while it runs and exact once it is finished.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from jobtracker.core.domain import JobStatus

MIN_ARRAY_SIZE = 2  # one child is a plain job (AWS Batch's floor too)
MAX_ARRAY_SIZE = 10_000  # AWS Batch's ceiling

# The children's final statuses the parent counts, and which of them are failures (a child
# cancelled on its own is no failure: its siblings go on, the parent ends CANCELLED).
FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED)
FAILURES = frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT})


@dataclass(frozen=True, kw_only=True)
class ArraySpec:
    """What an array asks for: its size, how many children may run at once, how many may fail
    (a count, or a percent of the size) before the parent fails."""

    size: int
    max_running: int | None = None  # None: as many as the launch rate allows
    tolerated_failures: int | None = None
    tolerated_failure_percent: float | None = None
    # Child i waits for child i-1 to end as `sequential_condition` says (one child at a time).
    sequential: bool = False
    sequential_condition: str | None = None  # core.dependencies.Condition; default succeeded

    @property
    def tolerated(self) -> int:
        """How many children may end FAILED or TIMED_OUT with the parent still succeeding."""
        if self.tolerated_failure_percent is not None:
            return math.floor(self.size * self.tolerated_failure_percent / 100)
        return self.tolerated_failures or 0

    @property
    def window(self) -> int:
        """Children launched and not finished, at most (a sequential array: one)."""
        if self.sequential:
            return 1
        return min(self.size, self.max_running or self.size)


@dataclass
class Summary:
    """The parent's counters: children launched so far (in index order) and children finished,
    by final status."""

    launched: int = 0
    finished: dict[JobStatus, int] = field(default_factory=dict)
    closed: bool = False  # no more children will be launched (the array failed or is cancelled)
    # A retry round (retry-failed): its number, the statuses it runs again, and how far its
    # fan-out has walked the indexes (those below `cursor` are done or launched again).
    round: int = 0
    redo: frozenset[JobStatus] = frozenset()
    cursor: int = 0
    # Arrays whose children wait on this one's index by index (core/dependencies.py).
    per_index_dependents: frozenset[str] = frozenset()

    def count(self, status: JobStatus) -> int:
        return self.finished.get(status, 0)

    @property
    def done(self) -> int:
        return sum(self.finished.values())

    @property
    def failures(self) -> int:
        return sum(self.count(s) for s in FAILURES)

    @property
    def running(self) -> int:
        """Launched and not finished (their tasks starting, running or stopping)."""
        return max(0, self.launched - self.done)


def launchable(spec: ArraySpec, summary: Summary) -> int:
    """How many more children may be launched now (the next indexes, from `launched`)."""
    return max(0, min(spec.size - summary.launched, spec.window - summary.running))


@dataclass(frozen=True)
class Verdict:
    status: JobStatus
    reason: str | None = None


def parent_status(spec: ArraySpec, summary: Summary, cancel_requested: bool = False) -> Verdict:
    """The parent's status from its counters: PENDING until a child is launched, then RUNNING;
    FAILED as soon as more children failed than it tolerates (the rest are then cancelled);
    once every child is finished, SUCCEEDED, or CANCELLED when one was cancelled. A cancelled
    parent is CANCELLING until its children are finished."""
    if summary.failures > spec.tolerated:
        return Verdict(JobStatus.FAILED, _failed(spec, summary))
    if summary.done >= spec.size:
        cancelled = summary.count(JobStatus.CANCELLED)
        if cancel_requested or cancelled:
            return Verdict(JobStatus.CANCELLED, f"{cancelled} of {spec.size} children cancelled")
        tolerated = f", {summary.failures} failed (tolerated)" if summary.failures else ""
        ok = summary.count(JobStatus.SUCCEEDED)
        return Verdict(JobStatus.SUCCEEDED, f"{ok} of {spec.size} children succeeded{tolerated}")
    if cancel_requested:
        return Verdict(JobStatus.CANCELLING, "cancelling its unfinished children")
    if summary.launched == 0:
        return Verdict(JobStatus.PENDING)
    return Verdict(JobStatus.RUNNING)


def _failed(spec: ArraySpec, summary: Summary) -> str:
    allowed = f"{spec.tolerated} tolerated" if spec.tolerated else "none tolerated"
    return f"{summary.failures} of {spec.size} children failed ({allowed})"


def recount(summary: Summary, children: dict[int, JobStatus]) -> Summary:
    """The exact finished counts from the children as read, by index (every index an array can
    have): an index of a closed array with no child (closed before its turn) counts CANCELLED;
    in a retry round, an index not yet reached whose child is to run again counts as nothing
    (it will run), unless the array closed since. `launched`, `closed` and the round are the
    counters' own."""
    finished: dict[JobStatus, int] = {}
    reached = summary.launched if not summary.round else summary.cursor
    for index, status in children.items():
        # (once closed, nothing waits: what was still to run again keeps the status it has)
        waiting = summary.round and not summary.closed and index >= reached
        waiting = waiting and status in summary.redo
        if status in FINAL and not waiting:
            finished[status] = finished.get(status, 0) + 1
    if summary.closed:
        never_made = summary.launched - len(children)
        if never_made > 0:
            finished[JobStatus.CANCELLED] = finished.get(JobStatus.CANCELLED, 0) + never_made
    return replace(summary, finished=finished)


def redo_of(status: JobStatus) -> frozenset[JobStatus]:
    """What retry-failed runs again of an array that ended `status`: the failures of one that
    succeeded (within its tolerance); of one that failed, every child that did not succeed
    (those its failure cancelled, or never launched, included)."""
    if status == JobStatus.FAILED:
        return FAILURES | {JobStatus.CANCELLED}
    return FAILURES


def failed_past_tolerance(spec: ArraySpec, summary: Summary) -> bool:
    return summary.failures > spec.tolerated


def spec_error(spec: ArraySpec) -> tuple[str, str] | None:
    """(field, problem) of an array spec no array can run with; None when it can. The API's
    model applies these (edge/api_models.py), as it does the submission's limits."""
    if not MIN_ARRAY_SIZE <= spec.size <= MAX_ARRAY_SIZE:
        return "size", f"must be {MIN_ARRAY_SIZE}-{MAX_ARRAY_SIZE:,}"
    if spec.max_running is not None and not 1 <= spec.max_running <= spec.size:
        return "max_running", f"must be 1-{spec.size} (the array's size)"
    if spec.tolerated_failures is not None and spec.tolerated_failure_percent is not None:
        return (
            "tolerated_failure_percent",
            "give tolerated_failures or tolerated_failure_percent, not both",
        )
    if spec.tolerated_failures is not None and not 0 <= spec.tolerated_failures <= spec.size:
        return "tolerated_failures", f"must be 0-{spec.size} (the array's size)"
    percent = spec.tolerated_failure_percent
    if percent is not None and not 0 <= percent <= 100:
        return "tolerated_failure_percent", "must be 0-100"
    if spec.sequential and (spec.max_running or 1) > 1:
        return "sequential", "a sequential array runs one child at a time: leave out max_running"
    if spec.sequential_condition is not None and not spec.sequential:
        return "sequential_condition", "applies to a sequential array only (sequential: true)"
    return None


def spec_of(data: dict[str, object] | None) -> ArraySpec | None:
    """A parent's ArraySpec from its JobSpec.array (the fields set)."""
    return None if data is None else ArraySpec(**data)  # type: ignore[arg-type]

"""Job dependencies (issue 23): the rules as data and pure functions. No I/O.

A job may wait for others (`depends_on`: up to MAX_DEPENDENCIES entries of a job id and a
condition). While any condition is open the job is WAITING and takes no launch slot; the moment
the last one is met it goes PENDING and launches through the usual path; the moment one can no
longer be met it ends CANCELLED (rule `dependency`), never launched, and so do its own
dependents, transitively. A job's unmet dependencies are one set on its record (`waiting_on`):
"blocked on N" is that set's size, here and nowhere else.

Where a dependency is found:

- a plain job or an array's parent waits on each job it names (an array as a whole: its parent's
  final status, no per-child bookkeeping);
- an array's child i waits on child i of every array its parent names with mode `per_index`
  (AWS Batch's N_TO_N, Slurm's aftercorr), and, in a `sequential` array, on its own child i-1.

Conditions only ever compare final statuses, and a final status never changes (an array's
retry round aside: a dependent decided on the array's first end stays decided), so a condition
decided once stays decided: a dependency met twice releases once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jobtracker.core.domain import TERMINAL_STATUSES, Job, JobStatus, child_id

MAX_DEPENDENCIES = 100  # AWS Batch: 20
RULE = "dependency"  # the rule an attempt records when its dependency cancels the job
NOT_ON_A_SCHEDULE = (
    "a schedule's job cannot depend on other jobs: each tick is a new job, and what it would "
    "wait on is not known when the schedule is made"
)


def repeated(job_ids: list[str]) -> str | None:
    """The problem of a depends_on that names a job twice; None when none does."""
    seen: set[str] = set()
    for job_id in job_ids:
        if job_id in seen:
            return f"names {job_id} twice (one entry per job)"
        seen.add(job_id)
    return None


class Condition(StrEnum):
    SUCCEEDED = "succeeded"  # the default (Batch's only one; Slurm's afterok)
    FINISHED = "finished"  # any final status (Slurm's afterany)
    FAILED = "failed"  # FAILED or TIMED_OUT (Slurm's afternotok)


# Which final statuses meet each condition: every other final status never will.
MEETS: dict[Condition, frozenset[JobStatus]] = {
    Condition.SUCCEEDED: frozenset({JobStatus.SUCCEEDED}),
    Condition.FINISHED: TERMINAL_STATUSES,
    Condition.FAILED: frozenset({JobStatus.FAILED, JobStatus.TIMED_OUT}),
}
PHRASE = {
    Condition.SUCCEEDED: "to succeed",
    Condition.FINISHED: "to finish",
    Condition.FAILED: "to fail",
}


class Mode(StrEnum):
    JOB = "job"  # wait for the named job (an array: its parent's final status)
    PER_INDEX = "per_index"  # an array on an array of its size: child i on child i
    # A sequential array's child on its own sibling i-1 (the array's `sequential`; never asked
    # for in depends_on: the child's spec carries it, naming its parent).
    SEQUENTIAL = "sequential"


class Verdict(StrEnum):
    OPEN = "open"  # not decided yet: the dependency has not ended
    MET = "met"
    NEVER = "never"  # it ended in a status the condition does not accept


@dataclass(frozen=True)
class Dependency:
    job_id: str
    condition: Condition = Condition.SUCCEEDED
    mode: Mode = Mode.JOB

    def to_dict(self) -> dict[str, Any]:
        """As the job's spec keeps it: the defaults left out."""
        out: dict[str, Any] = {"job_id": self.job_id}
        if self.condition != Condition.SUCCEEDED:
            out["condition"] = self.condition.value
        if self.mode != Mode.JOB:
            out["mode"] = self.mode.value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dependency:
        return cls(
            data["job_id"],
            Condition(data.get("condition") or Condition.SUCCEEDED),
            Mode(data.get("mode") or Mode.JOB),
        )


def verdict(condition: Condition, status: JobStatus | None) -> Verdict:
    """What a dependency's status says of its condition. None: the job is gone (its record
    expired by JobRetentionDays) or was never made (an index its array closed before its turn):
    both can only be a job that ended, and what it ended as is no longer known, so only
    `finished` is met."""
    if status is None:
        return Verdict.MET if condition == Condition.FINISHED else Verdict.NEVER
    if not status.terminal:
        return Verdict.OPEN
    return Verdict.MET if status in MEETS[condition] else Verdict.NEVER


def declared(job: Job) -> list[Dependency]:
    """The dependencies the job was submitted with (a child: its parent's)."""
    return [Dependency.from_dict(d) for d in job.spec.depends_on or ()]


def dependencies_of(job: Job) -> list[Dependency]:
    """What this job itself waits on: a plain job or a parent, the jobs it names (per-index
    entries are its children's); a child, child i of each per-index array and, in a sequential
    array, its own child i-1."""
    if job.parent_id is None:
        return [d for d in declared(job) if d.mode == Mode.JOB]
    out = []
    for d in declared(job):
        if d.mode == Mode.PER_INDEX:
            out.append(Dependency(child_id(d.job_id, job.array_index), d.condition, d.mode))
        elif d.mode == Mode.SEQUENTIAL and job.array_index > 0:
            out.append(Dependency(child_id(d.job_id, job.array_index - 1), d.condition, d.mode))
    return out


def for_children(parent: Job) -> list[dict[str, Any]] | None:
    """The depends_on a parent's children carry: its per-index entries and, when the array is
    sequential, one naming the parent itself (a JOB entry is the parent's own to wait on)."""
    out = [d for d in parent.spec.depends_on or () if d.get("mode") == Mode.PER_INDEX]
    array = parent.spec.array or {}
    if array.get("sequential"):
        condition = Condition(array.get("sequential_condition") or Condition.SUCCEEDED)
        out.append(Dependency(parent.job_id, condition, Mode.SEQUENTIAL).to_dict())
    return out or None


def per_index_sources(job: Job) -> list[str]:
    """The arrays a parent's children wait on index by index."""
    return [d.job_id for d in declared(job) if d.mode == Mode.PER_INDEX]


def shown(job: Job) -> list[Dependency]:
    """What a job's page shows it depends on: what it was submitted with (a child: what it
    itself waits on, its sibling or its index in another array)."""
    return dependencies_of(job) if job.parent_id else declared(job)


def condition_on(job: Job, dependency_id: str) -> Condition | None:
    for dep in dependencies_of(job):
        if dep.job_id == dependency_id:
            return dep.condition
    return None


def waiting_reason(job: Job, waiting_on: frozenset[str]) -> str:
    """The status reason of a WAITING job: what it waits for."""
    conditions = {d.job_id: d.condition for d in dependencies_of(job)}
    first = sorted(waiting_on)[0]
    text = f"waiting for {first} {PHRASE[conditions.get(first, Condition.SUCCEEDED)]}"
    if len(waiting_on) > 1:
        text += f" (and {len(waiting_on) - 1} more)"
    return text


def never_reason(dependency_id: str, status: JobStatus | None) -> str:
    ended = status.value if status is not None else "and is no longer kept"
    return f"dependency {dependency_id} ended {ended}"


@dataclass(frozen=True)
class Start:
    """How a job with dependencies starts, from its dependencies' statuses as read: the set it
    waits on (empty: it may launch), or the dependency that can never be met."""

    waiting_on: frozenset[str]
    never: tuple[str, JobStatus | None] | None = None


def start(job: Job, statuses: dict[str, JobStatus | None]) -> Start:
    """`statuses`: each dependency's status as read (None: gone, or never made); one left out
    is open (a child its array has not made yet)."""
    waiting: set[str] = set()
    for dep in dependencies_of(job):
        if dep.job_id not in statuses:
            waiting.add(dep.job_id)
            continue
        status = statuses[dep.job_id]
        decided = verdict(dep.condition, status)
        if decided == Verdict.NEVER:
            return Start(frozenset(), (dep.job_id, status))
        if decided == Verdict.OPEN:
            waiting.add(dep.job_id)
    return Start(frozenset(waiting))

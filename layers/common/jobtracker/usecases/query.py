"""Reading jobs: one job with all its attempts, a page of a list, an attempt's logs, or the
overview of recent jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from typing import TYPE_CHECKING

from jobtracker.core.domain import Attempt, Job, JobStatus, parse_iso
from jobtracker.core.errors import MalformedInput, NotFound
from jobtracker.usecases.ports import BadToken, LogPage
from jobtracker.wiring import Deps, default_deps

if TYPE_CHECKING:
    from jobtracker.core.arrays import ArraySpec, Summary
    from jobtracker.core.dependencies import Dependency
    from jobtracker.core.overview import Overview


def get_job(job_id: str, deps: Deps | None = None) -> Job:
    deps = deps or default_deps()
    job = deps.repo.get(job_id, full=True)
    if job is None:
        raise NotFound(f"no job with id {job_id!r}")
    return job


# A job's page shows this many of its dependents (GET /jobs/{id}/dependents: the rest).
DEPENDENTS_SHOWN = 20


@dataclass(frozen=True)
class JobRead:
    job: Job
    array: tuple[ArraySpec, Summary] | None = None  # an array's parent: its counters
    # What it depends on, each with the job as it is now (None: gone, or not made yet)...
    dependencies: list[tuple[Dependency, Job | None]] = field(default_factory=list)
    # ...and the first page of the jobs that wait on it, with the token of the next.
    dependents: tuple[list[Job], str | None] = ([], None)


def read_job(job_id: str, deps: Deps | None = None) -> JobRead:
    """A job with all its attempts; an array's parent with its counters; what it depends on
    and what depends on it."""
    from jobtracker.core.dependencies import shown

    deps = deps or default_deps()
    job = get_job(job_id, deps)
    named = shown(job)
    found = deps.repo.many(d.job_id for d in named) if named else {}
    dependents = (
        list_dependents(job_id, DEPENDENTS_SHOWN, None, deps) if job.has_dependents else ([], None)
    )
    return JobRead(
        job,
        deps.arrays.read(job_id) if job.is_array else None,
        [(d, found.get(d.job_id)) for d in named],
        dependents,
    )


def list_dependents(
    job_id: str, limit: int, token: str | None, deps: Deps | None = None
) -> tuple[list[Job], str | None]:
    """A page of the jobs that wait (or waited) on `job_id`, in the order they were made."""
    deps = deps or default_deps()
    try:
        ids, rest = deps.repo.dependents(job_id, limit, token)
    except BadToken as exc:
        raise _bad_token(exc) from None
    found = deps.repo.many(ids)
    return [found[i] for i in ids if i in found], rest


# Children are read by id, a window at a time: a status filter reads at most this many windows
# per call (then it answers what it has, with the token to read on).
CHILD_WINDOW = 100
MAX_CHILD_WINDOWS = 10


def list_children(
    parent_id: str,
    status: str | None,
    limit: int,
    token: str | None,
    deps: Deps | None = None,
) -> tuple[list[Job], str | None]:
    """A page of an array's children in index order (only those made: an index waiting for
    its turn has no job yet); next_token is the index to read on from."""
    deps = deps or default_deps()
    parent = deps.repo.get(parent_id)
    if parent is None or not parent.is_array:
        raise NotFound(f"no array job with id {parent_id!r}")
    found = deps.arrays.read(parent_id)
    made = found[1].launched if found else 0
    start = _child_token(token)
    page: list[Job] = []
    at = start
    for _ in range(MAX_CHILD_WINDOWS):
        if at >= made or len(page) >= limit:
            break
        window = range(at, min(made, at + CHILD_WINDOW))
        at = window.stop
        for child in deps.repo.children(parent_id, window):
            if status is None or child.status.value == status:
                page.append(child)
                if len(page) == limit:
                    at = child.array_index + 1
                    break
    return page, (str(at) if at < made else None)


def _child_token(token: str | None) -> int:
    if token is None:
        return 0
    if not token.isdigit() or len(token) > 5:
        raise _bad_token(BadToken("next_token is not a token this API issued"))
    return int(token)


# A tag is no index key: a tag filter reads the list's pages and keeps the matching jobs, up to
# this many page reads per call (then it answers what it has, with the token to read on).
MAX_TAG_FILTER_READS = 10


def list_jobs(
    status: str | None,
    definition: str | None,
    schedule: str | None,
    limit: int,
    token: str | None,
    deps: Deps | None = None,
    tag: str | None = None,
    children: bool = False,
) -> tuple[list[Job], str | None]:
    """A page of jobs, newest first; with `tag` ("key=value"), only the jobs carrying it; with
    `children`, arrays' children too. Each read asks for no more than the page still lacks, so
    no match is ever skipped over."""
    repo = (deps or default_deps()).repo

    def read(n: int, after: str | None) -> tuple[list[Job], str | None]:
        try:
            return repo.list_jobs(status, definition, schedule, n, after, children)
        except BadToken as exc:
            raise _bad_token(exc) from None

    if tag is None:
        return read(limit, token)
    key, _, value = tag.partition("=")
    found: list[Job] = []
    for _ in range(MAX_TAG_FILTER_READS):
        page, token = read(limit - len(found), token)
        found += [j for j in page if j.spec.tags.get(key) == value]
        if len(found) >= limit or token is None:
            break
    return found, token


def _bad_token(exc: BadToken) -> MalformedInput:
    return MalformedInput(
        str(exc), [{"field": "next_token", "message": str(exc)}], code="bad_token"
    )


@dataclass(frozen=True)
class AttemptLogs:
    job: Job
    attempt: Attempt
    page: LogPage

    @property
    def finished(self) -> bool:
        """No more lines will come: the attempt's task stopped (or never started)."""
        return (
            self.attempt.stopped_at is not None
            or self.attempt.outcome is not None
            or (self.attempt.number != self.job.attempt or self.job.status.terminal)
        )


def job_logs(
    job_id: str,
    attempt: int | None,
    limit: int,
    token: str | None,
    deps: Deps | None = None,
) -> AttemptLogs:
    """A page of one attempt's log lines, oldest first (default: the newest attempt); follow a
    running attempt by reading again with the page's next_token."""
    deps = deps or default_deps()
    job = get_job(job_id, deps)
    number = job.attempt if attempt is None else attempt
    chosen = job.attempts.get(number)
    if chosen is None:
        raise NotFound(f"job {job_id!r} has no attempt {number} (it has 1-{job.attempt})")
    where = chosen.log_location
    if where is None:  # not launched yet, or its definition logs nowhere
        return AttemptLogs(job, chosen, LogPage([], None, found=False))
    try:
        page = deps.logs.read(where[0], where[1], limit, token)
    except BadToken as exc:
        raise _bad_token(exc) from None
    return AttemptLogs(job, chosen, page)


# The overview reads at most this many of the window's newest jobs (a few list pages: one API
# call of a console left open stays well under a second), and this many waiting ones.
OVERVIEW_MAX_JOBS = 500
OVERVIEW_MAX_WAITING = 50
# Unfinished jobs counted for "running now / waiting now": every one, up to this many (read from
# the by_status index's ACTIVE shards, 100 a BatchGetItem; past it the console says "N+").
OVERVIEW_MAX_ACTIVE = 1000
PAGE = 100


def overview(hours: int, deps: Deps | None = None) -> Overview:
    """Jobs created in the last `hours`, newest first until the window or the cap ends."""
    from jobtracker.core.overview import summarize  # only GET /stats needs it (cold start)

    deps = deps or default_deps()
    until = deps.clock()
    since = until - timedelta(hours=hours)
    jobs: list[Job] = []
    token: str | None = None
    truncated = False
    while True:
        page, token = deps.repo.list_jobs(None, None, None, PAGE, token)
        fresh = [j for j in page if (parse_iso(j.created_at) or until) >= since]
        jobs.extend(fresh)
        if len(fresh) < len(page) or not token:
            break  # the list is newest first: the window ended on this page
        if len(jobs) >= OVERVIEW_MAX_JOBS:
            truncated = True
            break
    active = list(islice(deps.repo.active_jobs(), OVERVIEW_MAX_ACTIVE + 1))
    capped = len(active) > OVERVIEW_MAX_ACTIVE
    active = active[:OVERVIEW_MAX_ACTIVE]
    # The waiting ones are among the unfinished just read: the newest of them, as the list of
    # PENDING jobs would give them, without reading them a second time.
    pending = sorted(
        (j for j in active if j.status == JobStatus.PENDING), key=lambda j: j.created_at
    )[-OVERVIEW_MAX_WAITING:]
    return summarize(jobs, pending, since, until, truncated, active, capped)

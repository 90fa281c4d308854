"""Unit: a launch past the account's rate books its governor slot and goes at that time,
unasked, with no write on the job (issue 24: no herd); past the booking horizon it waits
visibly; the reconciler leaves a booked launch alone until its slot could have come (fakes)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, JobStatus, parse_iso
from jobtracker.core.lifecycle import Due
from jobtracker.core.submission import Submission
from jobtracker.edge.work import handle_work_message
from jobtracker.usecases.submit import submit_job
from jobtracker.wiring import Deps
from tests.fakes import FakeGovernor, fake_deps, launcher, queue, repo

INTERVAL = 0.5  # seconds between slots once the burst is taken
HORIZON = 10  # seconds a launch may book ahead


def governed(burst: int = 2) -> tuple[Deps, FakeGovernor]:
    deps = fake_deps(LAUNCH_BOOKING_SECONDS=str(HORIZON))
    governor = FakeGovernor(burst=burst, interval=INTERVAL)
    deps.governor = governor
    return deps, governor


def submit(deps: Deps) -> Job:
    return submit_job(Submission(definition="demo"), caller="tester", deps=deps).job


def launches(deps: Deps) -> list[tuple[dict[str, Any], int]]:
    return [(b, d) for _, b, d in queue(deps).sent if b.get("kind") == "launch"]


def test_a_launch_past_the_rate_books_its_slot_and_writes_nothing_on_the_job() -> None:
    # GIVEN a governor whose burst of 2 is taken
    deps, _ = governed()
    submit(deps), submit(deps)
    writes = repo(deps).writes
    # WHEN a third job is submitted
    third = submit(deps)
    # THEN it is PENDING with no write after its creation, and queued for its slot (0.5 s
    # after the burst: SQS's whole second), as a launch that will not ask again
    assert third.status is JobStatus.PENDING, third
    assert repo(deps).writes == writes, "a booking writes nothing on the job"
    assert launches(deps) == [
        ({"kind": "launch", "job_id": third.job_id, "attempt": 1, "booked": True}, 1)
    ], launches(deps)


def test_jobs_refused_at_once_book_one_slot_each_spread_at_the_rate() -> None:
    # GIVEN a governor whose burst is taken
    deps, _ = governed(burst=1)
    submit(deps)
    # WHEN 6 jobs are submitted at the same moment
    for _ in range(6):
        submit(deps)
    # THEN each is queued for its own slot, one interval apart (rounded up to SQS's seconds),
    # not all for the same next one
    assert [d for _, d in launches(deps)] == [1, 1, 2, 2, 3, 3], launches(deps)


def test_a_booked_launch_goes_at_its_time_without_asking_the_governor_again() -> None:
    # GIVEN a job whose launch was booked
    deps, governor = governed()
    submit(deps), submit(deps)
    third = submit(deps)
    ((message, delay),) = launches(deps)
    asked = governor.asked
    # WHEN its booked LAUNCH arrives, at its time
    deps.clock.advance(delay)  # type: ignore[attr-defined]
    handle_work_message(json.dumps(message), deps)
    # THEN it launched, and the governor was not asked again
    assert repo(deps).jobs[third.job_id].status is JobStatus.STARTING
    assert len(launcher(deps).requests) == 3, launcher(deps).requests
    assert governor.asked == asked, "a booked launch never asks twice"


def test_a_booked_launch_of_a_job_cancelled_meanwhile_does_nothing() -> None:
    # GIVEN a booked job, cancelled before its slot
    from jobtracker.usecases.cancel import cancel_job

    deps, _ = governed()
    submit(deps), submit(deps)
    third = submit(deps)
    ((message, _),) = launches(deps)
    cancel_job(third.job_id, "not needed", deps)
    # WHEN its booked LAUNCH arrives
    done = handle_work_message(json.dumps(message), deps)
    # THEN nothing is launched (the slot goes unused)
    assert done == "not-pending", done
    assert len(launcher(deps).requests) == 2


def test_a_launch_past_the_booking_horizon_waits_visibly_and_asks_again() -> None:
    # GIVEN a governor booked to its horizon (2 now, then 20 in 10 s at one per 0.5 s)
    deps, _ = governed()
    for _ in range(22):
        submit(deps)
    # WHEN one more job is submitted
    late = submit(deps)
    # THEN it waits, saying why, until its slot comes within the horizon, and asks again then
    stored = repo(deps).jobs[late.job_id]
    assert (stored.status_reason or "").startswith("waiting for launch capacity"), stored
    assert launches(deps)[-1] == (
        {"kind": "launch", "job_id": late.job_id, "attempt": 1},
        1,
    ), launches(deps)[-1]


def test_the_reconciler_relaunches_a_pending_job_only_once_its_booked_slot_could_have_come() -> (
    None
):
    # GIVEN a PENDING job with no task, last written at T
    deps, _ = governed()
    submit(deps), submit(deps)
    job = repo(deps).jobs[submit(deps).job_id]
    written = parse_iso(job.updated_at)
    assert written is not None
    grace = timedelta(seconds=deps.settings.decision_grace_seconds)
    horizon = timedelta(seconds=HORIZON)

    def due(booked_until: timedelta | None) -> timedelta:
        until = None if booked_until is None else written + booked_until
        return lifecycle.deadlines(job, deps.settings, until)[Due.LAUNCH] - written

    # WHEN / THEN: nothing booked -> its grace; booked 4 s ahead -> 4 s and its grace; booked
    # far ahead -> no later than the horizon (a booking never goes past it) and its grace
    assert due(None) == grace
    assert due(timedelta(seconds=-30)) == grace, "bookings that passed long ago"
    assert due(timedelta(seconds=4)) == timedelta(seconds=4) + grace
    assert due(timedelta(seconds=3600)) == horizon + grace

"""Integration (moto): the reconciler's backoff of a job is kept on the job item, written
through the store's one guarded UpdateItem, and never gets in an ECS event's way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobtracker.core.domain import JobStatus
from jobtracker.edge.task_events import handle_task_event
from jobtracker.usecases.reconcile import reconcile
from jobtracker.usecases.submit import submit_job
from jobtracker.wiring import Deps
from tests.conftest import AwsEnv
from tests.fakes import FakeClock
from tests.helpers import ecs_event, inject, real_deps, submission_of


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


def overdue_job_whose_stop_fails(aws: AwsEnv, deps: Deps, clock: FakeClock) -> str:
    """A running job past its timeout, and ECS refusing every StopTask."""
    body = {"definition": "demo", "timeout_seconds": 60}
    job = submit_job(submission_of(body), "tester", None, deps).job
    stored = deps.repo.get(job.job_id)
    assert stored is not None
    started = clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    running = ecs_event(
        "task_running", job.job_id, 1, None, stored.current.task_arn, aws.cluster_arn
    )
    running["detail"]["startedAt"] = started
    assert handle_task_event(running, deps).value == "applied"
    inject(
        "ecs", "StopTask", lambda p: {"Error": {"Code": "AccessDeniedException", "Message": "no"}}
    )
    clock.advance(61)
    return job.job_id


def test_a_failure_is_kept_on_the_job_item_by_a_guarded_update_and_survives_a_fresh_deps(
    aws: AwsEnv, clock: FakeClock
) -> None:
    # GIVEN an overdue job whose StopTask fails
    deps = real_deps(clock)
    job_id = overdue_job_whose_stop_fails(aws, deps, clock)
    updates: list[dict[str, Any]] = []

    def seen(params: dict[str, Any]) -> None:
        updates.append(params)  # and the call goes through to moto

    inject("dynamodb", "UpdateItem", seen)
    # WHEN the reconciler fails on it, and runs again a minute later from a fresh Deps (a new
    # Lambda: nothing kept in memory)
    first = reconcile(deps)
    from tests.conftest import reset_caches

    reset_caches()
    clock.advance(60)
    fresh = real_deps(clock)
    second = reconcile(fresh)
    # THEN the failure was one conditional UpdateItem that counted it on the job item...
    backoff = [u for u in updates if "rf" in u["ExpressionAttributeNames"].values()]
    assert first.errors == 1 and len(backoff) == 1, (first, updates)
    assert "attribute_not_exists" in backoff[0]["ConditionExpression"], backoff[0]
    stored = fresh.repo.get(job_id)
    assert stored is not None and stored.reconcile_failures == 1 and stored.reconcile_failed_at
    # ...and the next run, from a fresh Deps, left the job alone
    assert (second.backed_off, second.errors) == (1, 0), second


def test_an_ecs_event_applied_while_backed_off_still_applies(aws: AwsEnv, clock: FakeClock) -> None:
    # GIVEN a job the reconciler has backed off
    deps = real_deps(clock)
    job_id = overdue_job_whose_stop_fails(aws, deps, clock)
    reconcile(deps)
    backed_off = deps.repo.get(job_id)
    assert backed_off is not None and backed_off.reconcile_failures == 1
    # WHEN its task's STOPPED event arrives
    stopped = ecs_event(
        "task_stopped_success", job_id, 1, None, backed_off.current.task_arn, aws.cluster_arn
    )
    result = handle_task_event(stopped, deps)
    # THEN the event applied, the job ended, and its backoff is gone from the item
    after = deps.repo.get(job_id)
    assert result.value == "applied" and after is not None, result
    assert after.status == JobStatus.SUCCEEDED, after.status
    assert (after.reconcile_failures, after.reconcile_failed_at) == (0, None), "backoff ended"

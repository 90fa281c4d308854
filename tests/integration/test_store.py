"""Integration: the DynamoDB store on moto does exactly what lifecycle planned, item sizes stay
bounded, and the sharded indexes list every job once, newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jobtracker.adapters.models import SHARDS
from jobtracker.adapters.records import item_size, job_item
from jobtracker.core import lifecycle
from jobtracker.core.domain import Job, LaunchFailure
from jobtracker.core.submission import Submission
from jobtracker.edge.ecs_event import correlate, parse_event
from jobtracker.edge.task_events import handle_task_event
from jobtracker.usecases.cancel import cancel_job
from jobtracker.usecases.ports import ItemTooLarge, Written
from jobtracker.usecases.submit import build_job, submit_job
from jobtracker.wiring import Deps, default_deps
from tests.conftest import AwsEnv
from tests.helpers import ecs_event, submission_of, table_item_count


@pytest.fixture
def deps(aws: AwsEnv) -> Deps:
    return default_deps()


def submit(deps: Deps, **spec: Any) -> Job:
    return submit_job(submission_of({"definition": "demo", **spec}), "me", None, deps).job


def observed(job: Job, fixture: str, attempt: int = 1, **detail: Any) -> dict[str, Any]:
    event = ecs_event(fixture, job.job_id, attempt, None, job.attempts[attempt].task_arn)
    event["detail"].update(detail)
    return event


def wire_item(aws: AwsEnv, key: str) -> dict[str, Any]:
    """The item as DynamoDB holds it (DynamoDB JSON), read past the models."""
    import boto3

    got = boto3.client("dynamodb").get_item(TableName=aws.table, Key={"pk": {"S": key}})
    return got["Item"]


def raw_item(aws: AwsEnv, key: str) -> dict[str, Any]:
    """The item in plain values, by stored name."""
    from boto3.dynamodb.types import TypeDeserializer

    plain = TypeDeserializer().deserialize
    return {k: plain(v) for k, v in wire_item(aws, key).items()}


SETUPS: dict[str, Callable[[Deps, Job], None]] = {
    "none": lambda deps, job: None,
    "cancelling": lambda deps, job: cancel_job(job.job_id, "test", deps) and None,
}


@pytest.mark.parametrize(
    ("setup", "fixtures"),
    [
        ("none", ["task_running"]),
        ("none", ["task_running", "spot_interruption_notice"]),
        ("none", ["task_running", "task_stopped_success"]),
        ("none", ["task_running", "task_stopped_exit_2"]),
        ("none", ["task_running", "task_stopped_exit_2", "task_stopped_oom"]),
        ("none", ["task_stopped_success", "task_running"]),
        ("cancelling", ["task_running", "task_stopped_user_initiated"]),
        ("cancelling", ["task_stopped_success"]),
    ],
)
def test_the_store_ends_every_event_where_lifecycle_does(
    aws: AwsEnv, deps: Deps, setup: str, fixtures: list[str]
) -> None:
    # GIVEN a launched job, and a copy of it in memory
    job = submit(deps)
    SETUPS[setup](deps, job)
    reference = deps.repo.get(job.job_id)
    assert reference is not None
    # WHEN events arrive through the handler's no-read path (versions in delivery order)
    for version, fixture in enumerate(fixtures, start=5):
        raw = observed(job, fixture, version=version)
        handle_task_event(raw, deps)
        state = correlate(parse_event(raw)).state
        lifecycle.apply_task_state(reference, 1, state, deps.clock())
    # THEN the stored job is the one lifecycle computes in memory
    stored = deps.repo.get(job.job_id)
    assert stored is not None
    for j in (stored, reference):  # written a few ms apart: compare that they are set
        j.updated_at = "set"
        j.finished_at = j.finished_at and "set"
    assert stored == reference, fixtures


def test_spot_notice_keeps_stop_code_and_reason_on_the_stored_attempt(
    aws: AwsEnv, deps: Deps
) -> None:
    job = submit(deps)
    handle_task_event(observed(job, "task_running", version=2), deps)
    handle_task_event(observed(job, "spot_interruption_notice", version=3), deps)
    attempt = raw_item(aws, job.job_id)["a"]
    assert attempt["sc"] == "TerminationNotice", "stop code of the notice"
    assert "Spot" in attempt["sr"] and attempt["si"]


def test_a_stored_attempt_keeps_its_first_task(aws: AwsEnv, deps: Deps) -> None:
    job = submit(deps)
    other = "arn:aws:ecs:us-east-1:123456789012:task/jobtracker/ffffffffffffffffffffffffffffffff"
    raw = ecs_event("task_running", job.job_id, 1, 3, other, aws.cluster_arn)
    handle_task_event(raw, deps)
    assert raw_item(aws, job.job_id)["a"]["t"] == job.current.task_arn


def test_a_finished_stored_attempt_keeps_what_decided_it(aws: AwsEnv, deps: Deps) -> None:
    job = submit(deps)
    handle_task_event(observed(job, "task_stopped_exit_2", version=5), deps)
    before = raw_item(aws, job.job_id)["a"]
    handle_task_event(observed(job, "task_stopped_oom", version=9), deps)
    after = raw_item(aws, job.job_id)["a"]
    assert {k: v for k, v in after.items() if k != "h"} == {
        k: v for k, v in before.items() if k != "h"
    }
    assert set(after["h"]) == set(before["h"]) | {"9"}


def test_a_default_job_item_stays_under_1_kb_all_its_life(aws: AwsEnv, deps: Deps) -> None:
    # GIVEN a job submitted with defaults by a caller with a long IAM ARN
    job = submit_job(
        submission_of({"definition": "demo"}),
        "arn:aws:sts::123456789012:assumed-role/jobtracker-submitter-role/session-name-1234",
        None,
        deps,
    ).job
    sizes = [item_size(wire_item(aws, job.job_id))]
    # WHEN it runs to success
    for version, fixture in enumerate(["task_running", "task_stopped_success"], start=2):
        handle_task_event(observed(job, fixture, version=version), deps)
        sizes.append(item_size(wire_item(aws, job.job_id)))
    # THEN every write of it was of an item under 1 KB (1 WRU)
    assert max(sizes) < 1024, sizes
    assert raw_item(aws, job.job_id)["s"] == "SUCCEEDED"


def largest_submission() -> dict[str, Any]:
    """Every field at its validation maximum that ECS's 8,192-character overrides allow."""
    rule = {
        "name": "r" * 64,
        "exit_codes": list(range(50)),
        "stop_codes": ["S" * 64] * 20,
        "reason": "x" * 512,
        "action": "RETRY",
    }
    return {
        "definition": "demo",
        "parameters": {"blob": "p" * 7000},
        "tags": {f"k{i:03d}" + "k" * 124: "v" * 256 for i in range(40)},
        "timeout_seconds": 14 * 24 * 3600,
        "start_timeout_seconds": 24 * 3600,
        "retry": {
            "max_attempts": 10,
            "max_uncounted": 20,
            "rules": [rule] * 20,
            "backoff": {"base_seconds": 0},
        },
    }


def test_a_job_at_every_validation_maximum_stays_well_under_the_item_limit(
    aws: AwsEnv, deps: Deps
) -> None:
    # GIVEN the largest job the API accepts, on the last of its 30 attempts
    job = build_job(submission_of(largest_submission()), deps.settings, deps.clock(), "c" * 200)
    deps.repo.create(job)
    containers = [
        {"name": f"container-{i:02d}" + "n" * 200, "exitCode": 2, "reason": "R" * 1024}
        for i in range(10)
    ]
    for number in range(1, 31):
        # every attempt fails with 10 containers, a long reason and a long history; the first
        # 20 as infrastructure noise (uncounted), the last 10 counted
        reason = ("CannotPullContainerError: " if number <= 20 else "") + "R" * 1000
        for version in range(1, 13):
            raw = ecs_event("task_stopped_exit_2", job.job_id, number, None, None, aws.cluster_arn)
            raw["detail"].update(lastStatus="RUNNING", version=version, desiredStatus="RUNNING")
            if version == 12:
                raw["detail"].update(
                    lastStatus="STOPPED", stoppedReason=reason, containers=containers
                )
            handle_task_event(raw, deps)
        stored = deps.repo.get(job.job_id)
        assert stored is not None and stored.current.awaiting_decision, number
        if number < 30:
            plan = lifecycle.decide_retry(stored, number, deps.clock(), deps.settings)
            assert plan is not None and plan.decision.action != "FAIL", (number, plan)
            assert deps.repo.apply(plan.change).applied, number
    # THEN the hot item and every archived attempt stay well under 400 KB
    hot = item_size(wire_item(aws, job.job_id))
    archives = [item_size(wire_item(aws, f"{job.job_id}#{n}")) for n in range(1, 30)]
    print(f"\nlargest job, attempt 30: hot item {hot} B, largest archive {max(archives)} B")
    assert hot < 100 * 1024, hot
    assert max(archives) < 100 * 1024, max(archives)
    full = deps.repo.get(job.job_id, full=True)
    assert full is not None and sorted(full.attempts) == list(range(1, 31))


def test_a_job_too_large_to_store_is_refused_before_anything_is_written(
    aws: AwsEnv, deps: Deps
) -> None:
    job = build_job(submission_of({"definition": "demo"}), deps.settings, deps.clock(), "me")
    job.spec.parameters = {"blob": "x" * 500_000}  # past every API limit: only a bug gets here
    with pytest.raises(ItemTooLarge):
        deps.repo.create(job)
    assert table_item_count(aws.table) == 0


def test_a_task_reporting_more_states_than_history_keeps_still_moves_its_job(
    aws: AwsEnv, deps: Deps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN attempts keep at most 3 states
    monkeypatch.setattr(lifecycle, "MAX_HISTORY", 3)
    job = submit(deps)
    # WHEN its task reports 5 states, the last one STOPPED with success
    for version in range(1, 5):
        handle_task_event(observed(job, "task_running", version=version), deps)
    assert handle_task_event(observed(job, "task_stopped_success", version=9), deps) == "applied"
    # THEN the job still ended, and the history kept its first 3 states
    stored = raw_item(aws, job.job_id)
    assert stored["s"] == "SUCCEEDED"
    assert len(stored["a"]["h"]) == 3


def test_lists_merge_every_shard_newest_first_and_page_to_the_end(aws: AwsEnv, deps: Deps) -> None:
    # GIVEN more jobs than shards, some finished
    jobs = [submit(deps) for _ in range(SHARDS * 3)]
    for job in jobs[::4]:
        handle_task_event(observed(job, "task_stopped_success", version=3), deps)
    for status, expected in [
        (None, jobs),
        ("SUCCEEDED", jobs[::4]),
        ("STARTING", [j for i, j in enumerate(jobs) if i % 4]),
    ]:
        # WHEN they are listed 7 at a time
        seen: list[Job] = []
        token = None
        for _ in range(50):
            page, token = deps.repo.list_jobs(status, None, None, 7, token)
            assert len(page) <= 7
            seen += page
            if token is None:
                break
        # THEN every job comes once, newest first
        ids = [j.job_id for j in seen]
        assert sorted(ids) == sorted(j.job_id for j in expected), status
        created = [j.created_at for j in seen]
        assert created == sorted(created, reverse=True), status
    # AND the shards really were many
    assert len({job_item(j)["gc"] for j in jobs}) > SHARDS // 2


def test_a_stale_decision_never_overwrites_a_fuller_archive(aws: AwsEnv, deps: Deps) -> None:
    # GIVEN an attempt archived with three states
    from jobtracker.core.domain import Attempt, history_key

    job = submit(deps)
    store = deps.repo
    full = Attempt(number=1, client_token="t", outcome="retry")
    full.history = {history_key(v): {"status": "RUNNING", "version": v} for v in (2, 3, 4)}
    store._put_archive(job.job_id, full)  # type: ignore[attr-defined]
    # WHEN a redelivered decision writes the archive from an older snapshot (one state)
    stale = Attempt(number=1, client_token="t", outcome="retry")
    stale.history = {history_key(4): {"status": "STOPPED", "version": 4}}
    store._put_archive(job.job_id, stale)  # type: ignore[attr-defined]
    # THEN the fuller record stays
    assert set(raw_item(aws, f"{job.job_id}#1")["a"]["h"]) == {"2", "3", "4"}


def test_the_store_counts_launch_waits_apart_from_launch_failures(aws: AwsEnv, deps: Deps) -> None:
    # GIVEN a PENDING job stored without a task
    job = build_job(Submission(definition="demo"), deps.settings, deps.clock(), "me")
    deps.repo.create(job)
    now = deps.clock()

    def record(kind: LaunchFailure, error: str) -> Written:
        stored = deps.repo.get(job.job_id)
        assert stored is not None
        planned = lifecycle.record_launch_failure(stored, 1, error, kind, now, deps.settings)
        assert planned is not None
        return deps.repo.apply(planned[0])

    # WHEN it waits for capacity more times than transient errors are allowed, then meets one
    for _ in range(deps.settings.max_launch_failures + 1):
        assert record(LaunchFailure.WAIT, "RESOURCE:MEMORY").applied
    assert record(LaunchFailure.RETRY, "ServerException: oops").applied
    # THEN the stored job still waits to launch, each count in its own attribute
    stored = deps.repo.get(job.job_id)
    assert stored is not None and stored.status.value == "PENDING", stored and stored.status_reason
    item = raw_item(aws, job.job_id)
    assert (item.get("lw"), item.get("lf")) == (deps.settings.max_launch_failures + 1, 1)


def test_a_launch_failure_planned_from_a_stale_wait_count_is_refused(
    aws: AwsEnv, deps: Deps
) -> None:
    # GIVEN a PENDING job, and a wait planned from it before another launcher recorded a wait
    job = build_job(Submission(definition="demo"), deps.settings, deps.clock(), "me")
    deps.repo.create(job)
    now = deps.clock()
    first = lifecycle.record_launch_failure(
        job, 1, "RESOURCE:MEMORY", LaunchFailure.WAIT, now, deps.settings
    )
    stale = lifecycle.record_launch_failure(
        job, 1, "RESOURCE:CPU", LaunchFailure.WAIT, now, deps.settings
    )
    assert first is not None and stale is not None
    assert deps.repo.apply(first[0]).applied
    # WHEN the stale one is written THEN its guard refuses it
    written = deps.repo.apply(stale[0])
    assert not written.applied, "a wait planned from an old count overwrote a newer one"
    assert written.job is not None and written.job.launch_waits == 1

"""Unit: an attempt's estimated Fargate cost (vCPU and memory of the definition x billed time, at
listed prices), a job's total, and the definition's Fargate size."""

from __future__ import annotations

from typing import Any

import pytest

from jobtracker.config import JobDefinition
from jobtracker.core.checks import Invalid
from jobtracker.core.cost import attempt_cost, billed_seconds, job_cost
from jobtracker.core.domain import Attempt
from jobtracker.edge.ecs_event import correlate, parse_event
from tests.conftest import load_event


def definition(**size: Any) -> JobDefinition:
    return JobDefinition(task_definition="worker:1", container="worker", cluster="jobs", **size)


ONE_VCPU_2GB = definition(cpu=1024, memory=2048)


def attempt(
    started_at: str | None, stopped_at: str | None, launched_at: str | None = None
) -> Attempt:
    return Attempt(
        number=1,
        client_token="job-1-a1",
        launched_at=launched_at,
        started_at=started_at,
        stopped_at=stopped_at,
    )


def from_event(fixture: str) -> Attempt:
    """An attempt with the task times of a STOPPED fixture event."""
    state = correlate(parse_event(load_event(fixture))).state
    return attempt(state.started_at, state.stopped_at)


def test_ten_minutes_of_1_vcpu_and_2_gb_cost_the_listed_prices() -> None:
    # GIVEN a 1 vCPU / 2 GB x86 definition and an attempt that ran 10 minutes
    ten_minutes = attempt("2026-11-20T10:00:00.000Z", "2026-11-20T10:10:00.000Z")
    # WHEN it is priced
    cost = attempt_cost(ten_minutes, ONE_VCPU_2GB)
    # THEN it is (1 x $0.04048 + 2 x $0.004445) per hour x 1/6 hour, by hand: $0.0082283
    assert cost == pytest.approx(0.00822833, abs=1e-8), f"10 min of 1 vCPU/2 GB cost {cost}"


def test_arm_is_priced_at_arm_rates() -> None:
    # GIVEN the same 10 minutes on an ARM64 definition
    ten_minutes = attempt("2026-11-20T10:00:00.000Z", "2026-11-20T10:10:00.000Z")
    arm = definition(cpu=1024, memory=2048, architecture="ARM64")
    # WHEN it is priced
    cost = attempt_cost(ten_minutes, arm)
    # THEN it is (1 x $0.03238 + 2 x $0.00356) / 6, by hand: $0.0065833
    assert cost == pytest.approx(0.00658333, abs=1e-8), f"10 min on ARM64 cost {cost}"


def test_run_time_is_rounded_up_to_the_second() -> None:
    # GIVEN a real STOPPED event: started 10:00:16.218, stopped 10:01:20.000 (63.782 s)
    ran = from_event("task_stopped_exit_2")
    # THEN 64 seconds are billed
    assert billed_seconds(ran) == 64, f"billed {billed_seconds(ran)} s for 63.782 s"


def test_a_short_task_is_billed_the_one_minute_minimum() -> None:
    # GIVEN an attempt whose task ran 20 seconds
    short = attempt("2026-11-20T10:00:00.000Z", "2026-11-20T10:00:20.000Z")
    # WHEN it is priced
    cost = attempt_cost(short, ONE_VCPU_2GB)
    # THEN a whole minute is billed: (0.04048 + 2 x 0.004445) / 60, by hand: $0.00082283
    assert billed_seconds(short) == 60, f"billed {billed_seconds(short)} s for 20 s"
    assert cost == pytest.approx(0.000822833, abs=1e-9), f"20 s cost {cost}"


def test_a_task_that_never_started_is_billed_from_its_launch() -> None:
    # GIVEN an attempt whose image pull failed: launched, stopped, never RUNNING
    failed_pull = attempt(None, "2026-11-20T10:02:00.000Z", launched_at="2026-11-20T10:00:00.000Z")
    # THEN it is billed from the launch to the stop
    assert billed_seconds(failed_pull) == 120, f"billed {billed_seconds(failed_pull)} s"


@pytest.mark.parametrize(
    "size",
    [{}, {"launch_type": "EC2", "cpu": 1024, "memory": 2048}],
    ids=["no cpu/memory", "not on Fargate"],
)
def test_no_cost_without_a_fargate_size(size: dict[str, Any]) -> None:
    # GIVEN a definition whose Fargate size is unknown (or that runs on EC2)
    unknown = definition(**size)
    # WHEN a finished attempt is priced
    cost = attempt_cost(from_event("task_stopped_success"), unknown)
    # THEN there is no estimate
    assert cost is None, f"priced at {cost} without a Fargate size"


@pytest.mark.parametrize(
    "times",
    [(None, None), ("2026-11-20T10:00:00.000Z", None)],
    ids=["never launched", "still running"],
)
def test_no_cost_before_the_task_has_run_and_stopped(times: tuple[str | None, str | None]) -> None:
    # GIVEN an attempt with no task yet, or one still running
    unfinished = attempt(*times)
    # THEN it has no cost yet
    assert attempt_cost(unfinished, ONE_VCPU_2GB) is None


def test_the_jobs_total_is_the_sum_of_its_attempts() -> None:
    # GIVEN a job whose first attempt ran 10 minutes, its second 64 s, its third not yet launched
    attempts = [
        attempt("2026-11-20T10:00:00.000Z", "2026-11-20T10:10:00.000Z"),
        from_event("task_stopped_success"),
        attempt(None, None),
    ]
    # WHEN the job is priced
    total = job_cost(attempts, ONE_VCPU_2GB)
    # THEN it is the sum of the priced attempts: 674 s at $0.04937 an hour
    expected = (600 + 64) * 0.04937 / 3600
    assert total == pytest.approx(expected, abs=1e-10), f"total {total}, expected {expected}"


def test_a_job_with_no_priced_attempt_has_no_total() -> None:
    # GIVEN a job whose only attempt was never launched
    # THEN it has no total
    assert job_cost([attempt(None, None)], ONE_VCPU_2GB) is None


@pytest.mark.parametrize(
    ("cpu", "memory"), [(256, 512), (256, 2048), (4096, 30720), (8192, 61440), (16384, 122880)]
)
def test_a_definition_accepts_fargate_task_sizes(cpu: int, memory: int) -> None:
    # GIVEN a valid Fargate cpu/memory pair THEN the definition keeps it
    size = definition(cpu=cpu, memory=memory)
    assert (size.cpu, size.memory) == (cpu, memory)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ({"cpu": 256, "memory": 4096}, "does not go with cpu 256"),
        ({"cpu": 1024, "memory": 2500}, "does not go with cpu 1024"),
        ({"cpu": 8192, "memory": 18432}, "in steps of 4096"),
        ({"cpu": 3000, "memory": 8192}, "not a Fargate CPU size"),
        ({"cpu": 1024}, "give both or neither"),
        ({"memory": 2048}, "give both or neither"),
    ],
)
def test_a_definition_rejects_what_fargate_would(size: dict[str, int], message: str) -> None:
    # GIVEN a cpu/memory combination Fargate refuses (or half of one)
    # WHEN a definition is made with it THEN it is rejected, saying why
    with pytest.raises(Invalid, match=message):
        definition(**size)

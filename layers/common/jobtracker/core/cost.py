"""Estimated Fargate cost of an attempt and of a job, at listed prices. No I/O.

Computed when a job is read, from what its attempts already record: nothing is stored for it, so
tracking a job costs the same writes with or without it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobtracker.core.domain import Attempt, parse_iso

if TYPE_CHECKING:
    from jobtracker.config import JobDefinition


@dataclass(frozen=True)
class FargateRate:
    vcpu_hour: float  # USD per vCPU-hour
    gb_hour: float  # USD per GB-hour of memory (1 GB = 1,024 MiB)


# AWS Fargate on-demand, Linux, us-east-1, USD: https://aws.amazon.com/fargate/pricing/ (read
# 2026-11-24; the x86 figures match ../shared/reference/ecs.md). Billed per second, from the start
# of the image pull until the task stops, rounded up to the second, with a one-minute minimum.
# Fargate Spot has no listed price (up to 70% less): a Spot task is priced on-demand, an upper
# bound. Ephemeral storage over the free 20 GB is not priced.
FARGATE_RATES: dict[str, FargateRate] = {
    "X86_64": FargateRate(vcpu_hour=0.04048, gb_hour=0.004445),
    "ARM64": FargateRate(vcpu_hour=0.03238, gb_hour=0.00356),
}
MINIMUM_BILLED_SECONDS = 60

# The task sizes Fargate accepts: CPU units -> memory (MiB), from "Troubleshoot Amazon ECS task
# definition invalid CPU or memory errors" (https://docs.aws.amazon.com/AmazonECS/latest/userguide/
# task-cpu-memory-error.html) and the TaskDefinition API reference; 8192 and 16384 need Linux
# platform 1.4.0 or later.
FARGATE_SIZES: dict[int, Collection[int]] = {
    256: (512, 1024, 2048),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}


def fargate_size_error(cpu: int, memory: int) -> str | None:
    """Why (cpu units, memory MiB) is not a Fargate task size; None when it is one."""
    if cpu not in FARGATE_SIZES:
        return f"cpu {cpu} is not a Fargate CPU size (one of {', '.join(map(str, FARGATE_SIZES))})"
    allowed = FARGATE_SIZES[cpu]
    if memory in allowed:
        return None
    if isinstance(allowed, range):
        sizes = f"{allowed.start}-{allowed.stop - 1} MiB in steps of {allowed.step}"
    else:
        sizes = ", ".join(map(str, allowed)) + " MiB"
    return f"memory {memory} MiB does not go with cpu {cpu} on Fargate ({sizes})"


def billed_seconds(attempt: Attempt) -> int | None:
    """Seconds Fargate bills for the attempt's task; None before it has both ends.

    Fargate bills from the image pull; the attempt does not record pullStartedAt, so it starts
    at the task's startedAt (taken from the same ECS events as stoppedAt, so one clock: a few
    seconds short, by the pull). A task that never started (e.g. its pull failed) starts at our
    RunTask time, launched_at, which also counts the unbilled provisioning: an upper bound. The
    end is the task's stoppedAt; for a task the reconciler found lost, when it gave up on it, also
    an upper bound."""
    start = parse_iso(attempt.started_at) or parse_iso(attempt.launched_at)
    stop = parse_iso(attempt.stopped_at)
    if start is None or stop is None:
        return None
    # Clamped: launched_at (our clock) may be a little after ECS's stoppedAt (its clock).
    seconds = math.ceil(max(0.0, (stop - start).total_seconds()))
    return max(MINIMUM_BILLED_SECONDS, seconds)


def _on_fargate(definition: JobDefinition) -> bool:
    if definition.capacity_provider_strategy:
        return all(
            p.capacity_provider in ("FARGATE", "FARGATE_SPOT")
            for p in definition.capacity_provider_strategy
        )
    return definition.launch_type in (None, "FARGATE")


def attempt_cost(attempt: Attempt, definition: JobDefinition | None) -> float | None:
    """Estimated USD of the attempt's task; None when the definition's size is unknown, it does
    not run on Fargate, or the task has not both started and stopped."""
    if definition is None or definition.cpu is None or definition.memory is None:
        return None
    if not _on_fargate(definition):
        return None
    seconds = billed_seconds(attempt)
    if seconds is None:
        return None
    rate = FARGATE_RATES[definition.architecture]
    per_hour = definition.cpu / 1024 * rate.vcpu_hour + definition.memory / 1024 * rate.gb_hour
    return per_hour * seconds / 3600


def job_cost(attempts: Iterable[Attempt], definition: JobDefinition | None) -> float | None:
    """The sum over the attempts whose cost is known; None when none is."""
    costs = [c for c in (attempt_cost(a, definition) for a in attempts) if c is not None]
    return sum(costs) if costs else None

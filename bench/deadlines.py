"""Timeouts to the second, on the local stack: N long jobs with run timeouts of 3-30 s, submitted
together; prints how long after its timeout fell due each task was stopped (ECS's stoppedAt
minus startedAt minus timeout_seconds: what a user sees, the worker's exit on SIGTERM
included), p50 / p95 / max. Target (issue 21): p95 <= 5 s. Anchor: the reconciler alone, once
a minute, overshot by up to 60 s (measured before the timers: 21-38 s for 3-20 s timeouts).

    python bench/deadlines.py [--jobs 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local import parse, percentile  # noqa: E402
from tests.e2e.conftest import Stack, start_stack, stop_stack  # noqa: E402

TARGET_P95_SECONDS = 5.0
TIMEOUTS = (3, 5, 10, 20, 30)
# Longer than any timeout; it stops between units of 0.1 s once told to (SIGTERM).
LONG_JOB = {"kind": "long", "units": 1200, "unit_seconds": 0.1}


def overshoot(job: dict[str, Any]) -> float | None:
    attempt = job["attempts"][-1]
    began, stopped = parse(attempt.get("started_at")), parse(attempt.get("stopped_at"))
    if began is None or stopped is None:
        return None
    return stopped - began - job["timeout_seconds"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jobtracker-deadlines-bench-"))
    proc, info = start_stack(work)
    stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], work)
    try:

        def submit(n: int) -> dict[str, Any]:
            body = {
                "definition": "demo",
                "parameters": {**LONG_JOB, "n": n},
                "timeout_seconds": TIMEOUTS[n % len(TIMEOUTS)],
            }
            return stack.submit(body)

        with ThreadPoolExecutor(8) as pool:
            jobs = list(pool.map(submit, range(args.jobs)))
        deadline = time.time() + max(TIMEOUTS) + 300
        final: list[dict[str, Any]] = []
        for job in jobs:
            final.append(stack.wait(job["id"], timeout=max(1.0, deadline - time.time())))
    finally:
        stop_stack(proc)
    statuses = Counter(j["status"] for j in final)
    over = [s for s in map(overshoot, final) if s is not None]
    p95 = percentile(over, 0.95)
    print(f"{args.jobs} jobs with timeouts {TIMEOUTS} s on the local stack: {dict(statuses)}")
    print(
        f"  stopped after the timeout fell due: p50 {percentile(over, 0.5):.2f} s,"
        f" p95 {p95:.2f} s, max {max(over, default=float('nan')):.2f} s"
        f" (target p95 <= {TARGET_P95_SECONDS:g} s: {'PASS' if p95 <= TARGET_P95_SECONDS else 'FAIL'})"
    )
    print(f"  {p95 / 60:.3f} x the reconciler's minute")
    return 0 if statuses == Counter({"TIMED_OUT": args.jobs}) else 1


if __name__ == "__main__":
    sys.exit(main())

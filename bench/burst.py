"""A burst through the local stack with the account's launch limits on: N jobs submitted at
once, then waited for. Prints how many succeeded and failed, how often ECS throttled RunTask
(the governor should keep it at 0), tasks per job (1: no double launch), and the rates.

    python bench/burst.py [--jobs 1000] [--rate 20] [--burst 100] [--threads 8]

The local stack runs every task as a process on this machine: end to end it is bounded by the
machine (issue 12), not by the tracker; the governor and ECS limits are the account's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import Stack, start_stack, stop_stack  # noqa: E402

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"}


def status_of(stack: Stack, job_id: str) -> str:
    _, job = stack.request("GET", f"/jobs/{job_id}")
    return str(job["status"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--burst", type=float, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jobtracker-burst-"))
    proc, info = start_stack(
        work,
        "--backoff-scale",
        "0.02",
        "--ecs-launch-rate",
        str(args.rate),
        "--ecs-launch-burst",
        str(args.burst),
    )
    stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], work)
    body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            jobs = list(pool.map(lambda _: stack.submit(body), range(args.jobs)))
        submitted = time.perf_counter() - started
        queued = sum(1 for j in jobs if j["status"] == "PENDING")
        pending = {j["id"] for j in jobs}
        final: Counter[str] = Counter()
        deadline = time.time() + args.timeout
        while pending and time.time() < deadline:
            with ThreadPoolExecutor(args.threads) as pool:
                statuses = dict(
                    zip(pending, pool.map(lambda i: status_of(stack, i), pending), strict=True)
                )
            for job_id, status in statuses.items():
                if status in TERMINAL:
                    final[status] += 1
                    pending.discard(job_id)
            time.sleep(1)
        elapsed = time.perf_counter() - started
        ecs = stack.ecs_tasks()  # the local ECS's helper (it takes the stack's token)
        per_job = Counter(t["startedBy"] for t in ecs["tasks"])
    finally:
        stop_stack(proc)
    print(f"burst: {args.jobs} jobs, account limits {args.rate:g}/s, burst {args.burst:g}")
    print(f"  submitted in {submitted:.1f} s ({args.jobs / submitted:.1f}/s); {queued} queued")
    print(f"  finished: {dict(final)}; not finished: {len(pending)}; in {elapsed:.1f} s")
    print(f"  RunTask throttled by ECS: {ecs['throttled']} (target 0)")
    print(f"  tasks per job: {dict(Counter(per_job.values()))} (target: all 1)")
    ok = (
        final.get("SUCCEEDED", 0) == args.jobs
        and ecs["throttled"] == 0
        and set(per_job.values()) == {1}
    )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

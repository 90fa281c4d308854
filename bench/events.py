"""Event path cost: AWS calls per applied event, per duplicate and per job lifecycle (counted,
not timed), against the minimum; then events per second through on_task_state on moto.

    python bench/events.py [--events 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.offline  # noqa: E402, F401  (the bench environment, before any AWS import)

os.environ["LAUNCH_BACKOFF_BASE_SECONDS"] = "0"
# The throughput part submits its jobs as fast as one process can: past Fargate's rate (20/s,
# burst 100) they would wait for launch capacity, which is not what it measures.
os.environ.update(LAUNCH_RATE="1000", LAUNCH_BURST="10000")


def row(label: str, calls: list[str], minimum: int, why: str) -> None:
    summary = ", ".join(f"{k} x{v}" for k, v in Counter(calls).items())
    print(
        f"{label:34s} {len(calls):3d} calls (minimum {minimum}, ratio {len(calls) / minimum:4.2f})  {summary}  [{why}]"
    )


# create (or the retry's write), a slot from the launch governor, RunTask, record the task
LAUNCH = 4


def lifecycle_events(stopped: str) -> list[str]:
    """The fixtures of one attempt's events as the EventBridge rule (template.yaml) delivers
    them, ending with `stopped`."""
    from jobtracker_local.template import load

    props = load()["Resources"]["OnTaskStateFunction"]["Properties"]
    statuses = props["Events"]["TaskStateChange"]["Properties"]["Pattern"]["detail"]["lastStatus"]
    return [stopped if s == "STOPPED" else f"task_{s.lower()}" for s in statuses]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from moto import mock_aws

    with mock_aws():
        from tests.conftest import provision
        from tests.helpers import CallCounter, call_api, drain, invoke, job_event, submitted

        env = provision()
        on_state = "functions/on_task_state"

        counter = CallCounter()
        job = submitted()
        row(
            "POST /jobs (store + launch)",
            counter.reset(),
            LAUNCH,
            "create, launch slot, RunTask, record task",
        )

        def ev(name: str, job: dict, attempt: int = 1, version: int | None = None) -> dict:
            return job_event(job, name, env.cluster_arn, attempt, version)

        invoke(on_state, ev("task_pending", job))
        row("non-terminal event, applied", counter.reset(), 1, "one conditional write, no read")
        invoke(on_state, ev("task_pending", job))
        row(
            "duplicate event",
            counter.reset(),
            1,
            "a rejected write, then the read that tells why (pynamodb: no item with the refusal)",
        )
        invoke(on_state, ev("task_running", job))
        counter.reset()
        invoke(on_state, ev("task_pending", job))
        row(
            "older event after newer",
            counter.reset(),
            1,
            "refused: already in its history; the read as above",
        )
        invoke(on_state, ev("task_stopped_success", job))
        row("STOPPED, success", counter.reset(), 1, "one conditional write, no read")

        # Whole lifecycles, with the states the event rule delivers (template.yaml).
        delivered = lifecycle_events("task_stopped_success")
        counter.reset()
        job = submitted()
        for name in delivered:
            invoke(on_state, ev(name, job))
        row(
            "job lifecycle, success",
            counter.reset(),
            LAUNCH + len(delivered),
            f"create, launch slot, RunTask, record task + {len(delivered)} states",
        )

        counter.take_slots()
        job = submitted({"definition": "demo", "retry": {"backoff": {"base_seconds": 0}}})
        for name in lifecycle_events("task_stopped_exit_2"):
            invoke(on_state, ev(name, job))
        drain(env.retry_queue_url)
        drain(env.launch_queue_url)
        calls = counter.reset()
        job = call_api("GET", f"/jobs/{job['id']}").body  # the bench's own read: not counted
        counter.reset()
        for name in delivered:
            invoke(on_state, ev(name, job, attempt=2))
        calls += counter.reset()
        calls = [c for c in calls if c not in ("sqs.ReceiveMessage", "sqs.DeleteMessage")]
        row(
            "job lifecycle, one retry",
            calls,
            2 * (LAUNCH + len(delivered)) + 3,
            f"2 x (launch {LAUNCH} + states) + hand-off, decide, relaunch",
        )
        slots = counter.take_slots()
        print(
            f"{'':34s} of which {slots} launch-governor slots (issue 9, one per launch):"
            f" {len(calls) - slots} calls without them (issue 8's target <= 14 predates the"
            " governor); the one read is the launch's, so a job cancelled while it waits is"
            " never started"
        )

        # Throughput: distinct jobs, one RUNNING event each, then the same events again.
        counter.close()
        jobs = [submitted() for _ in range(args.events)]
        events = [ev("task_running", j) for j in jobs]
        t0 = time.perf_counter()
        for e in events:
            invoke(on_state, e)
        applied = time.perf_counter() - t0
        t0 = time.perf_counter()
        for e in events:
            invoke(on_state, e)
        dup = time.perf_counter() - t0
        print(
            f"throughput on moto in-process: {args.events / applied:6.0f} applied events/s, "
            f"{args.events / dup:6.0f} duplicates/s ({args.events} events each)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

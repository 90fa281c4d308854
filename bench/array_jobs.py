"""Array jobs at scale, in two parts, each figure printed beside its target.

1. Metered, in-process (bench/harness.py: the real handlers on moto with bench/ddb_meter.py's
   rules): an array of --metered children, POSTed through create_job, its fan-out drained by
   retry_decider, each child's PENDING, RUNNING and STOPPED events through on_task_state and the
   table's stream through the notifier (which settles every child's end), until the parent
   SUCCEEDED. Prints what POST wrote (items, whatever the size), the parent's item size, and
   DynamoDB write units per child, the parent's share included (target <= 12; a plain job's is
   bench/cost.py's anchor, 10).
2. On the local stack with Fargate's launch limits: an array of --size children (default
   10,000), zero-second tasks. Prints POST's latency, that every child SUCCEEDED with one task
   each and RunTask was never throttled, the end-to-end time against the floor the launch rate
   allows (target >= 0.9 of it), the most child tasks at once, and the stack's RSS at the start,
   the middle and the end (flat).

    python bench/array_jobs.py [--metered 500] [--size 10000] [--skip-local | --skip-metered]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402  (sets the bench's environment first)
from bench.ddb_meter import DdbMeter  # noqa: E402

WRU_TARGET = 12  # per child, the parent's share included (issue 22)
PLAIN_JOB_WRU = 10  # bench/cost.py's success scenario: the anchor
FLOOR_TARGET = 0.9  # end to end against the floor the launch rate allows
CHILD_EVENTS = ("task_pending", "task_running", "task_stopped_success")


def metered(size: int) -> dict[str, Any]:
    from moto import mock_aws

    from jobtracker.adapters.records import item_size, job_record
    from jobtracker.core.domain import child_id
    from jobtracker.wiring import default_deps
    from tests.helpers import call_api

    # The account's launch rate is the local part's subject: here every child launches at once
    # (one governor write each, as on AWS), so the meter sees a child's whole life in one pass.
    os.environ.update({"LAUNCH_RATE": "1000", "LAUNCH_BURST": "10000"})
    with mock_aws(), DdbMeter(reuse_images=True) as meter:
        h = harness.Harness(meter)
        h.submit({"definition": "demo"})  # warm-up: imports, clients (a warm Lambda)
        h.drain()
        meter.reset()
        body = {"definition": "demo", "array": {"size": size}}
        t0 = time.perf_counter()
        reply = call_api("POST", "/jobs", body)
        post_seconds = time.perf_counter() - t0
        assert reply.status == 202, reply.body
        parent_id = reply.body["id"]
        at_post = meter.snapshot()
        post_items = at_post.calls.get("dynamodb.PutItem", 0)
        with meter.paused():
            stored = default_deps().repo.get(parent_id)
            assert stored is not None
            parent_bytes = item_size(job_record(stored).serialize())
        done: set[int] = set()
        for _ in range(size * 4):
            h.drain()  # FANOUTs (and launches): children made and launched
            with meter.paused():
                kids = default_deps().repo.children(parent_id, range(size))
            fresh = [k for k in kids if k.current.task_arn and k.array_index not in done]
            for kid in fresh:
                job = h.job(child_id(parent_id, kid.array_index))
                for name in CHILD_EVENTS:
                    h.event(job, name)
                done.add(kid.array_index)
            h.drain()
            h.notify()  # the stream: each child's end settled, its job change published
            if h.job(parent_id)["status"] == "SUCCEEDED":
                break
        final = h.job(parent_id)
        snap = meter.reset()
    wru = snap.wru
    return {
        "size": size,
        "post_seconds": post_seconds,
        "post_items": post_items,
        "parent_bytes": parent_bytes,
        "status": final["status"],
        "summary": final["array"]["summary"],
        "wru": wru,
        "wru_per_child": wru / size,
        "calls": snap.calls,
    }


def local(size: int, extra: list[str]) -> dict[str, Any]:
    import tempfile

    from bench.local import TaskWatcher, launch_cap, rss_mb
    from tests.e2e.conftest import Stack, peak_concurrency, start_stack, stop_stack

    with tempfile.TemporaryDirectory() as work:
        proc, info = start_stack(Path(work), *extra)
        try:
            stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], Path(work))
            pid = proc.pid
            rss = [rss_mb(pid)]
            watcher = TaskWatcher(stack, every=2.0)
            body = {
                "definition": "demo",
                "parameters": {"kind": "succeed", "seconds": 0},
                "array": {"size": size},
            }
            t0 = time.time()
            status, parent = stack.request("POST", "/jobs", body)
            post_seconds = time.time() - t0
            assert status == 202, parent
            half = False
            while True:
                job = stack.job(parent["id"])
                summary = job["array"]["summary"]
                if not half and summary["SUCCEEDED"] >= size // 2:
                    rss.append(rss_mb(pid))
                    half = True
                if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                    break
                time.sleep(1.0)
            finished = job["finished_at"]
            tasks = watcher.stop()
            rss.append(rss_mb(pid))
        finally:
            stop_stack(proc)
    from bench.local import parse

    end_to_end = (parse(finished) or time.time()) - t0
    rate, words = launch_cap(size, extra)
    floor = size / rate
    prefix = parent["id"] + "-"
    mine = [t for t in tasks if str(t.get("startedBy", "")).startswith(prefix)]
    per_child: dict[str, int] = {}
    for t in mine:
        per_child[t["startedBy"]] = per_child.get(t["startedBy"], 0) + 1
    return {
        "size": size,
        "post_seconds": post_seconds,
        "status": job["status"],
        "summary": summary,
        "end_to_end": end_to_end,
        "floor": floor,
        "limits": words,
        "tasks": len(mine),
        "children_with_one_task": sum(1 for n in per_child.values() if n == 1),
        "throttled": watcher.throttled,
        "peak": peak_concurrency(mine, start="createdAt"),
        "rss": rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metered", type=int, default=500, help="children, metered in-process")
    parser.add_argument("--size", type=int, default=10_000, help="children on the local stack")
    args = harness.two_parts(parser)
    ok = True
    if not args.skip_metered:
        m = metered(args.metered)
        share = m["wru_per_child"]
        ok &= m["status"] == "SUCCEEDED" and share <= WRU_TARGET
        print(f"Array of {m['size']} children, metered in-process (bench/ddb_meter.py's rules)")
        print(f"  POST: {m['post_seconds'] * 1000:.0f} ms, {m['post_items']} items written"
              " (target: O(1), whatever the size)")  # fmt: skip
        print(f"  parent's item: {m['parent_bytes']} B (target < 1024)")
        print(f"  final: {m['status']}, summary {m['summary']}")
        print(f"  DynamoDB write units: {m['wru']} = {share:.2f} per child, the parent's share"
              f" included (target <= {WRU_TARGET}; a plain job: {PLAIN_JOB_WRU},"
              f" ratio {share / PLAIN_JOB_WRU:.2f})")  # fmt: skip
        calls = ", ".join(
            f"{k} {v / m['size']:.2f}" for k, v in sorted(m["calls"].items()) if "dynamodb" in k
        )
        print(f"  DynamoDB calls per child: {calls}")
    if not args.skip_local:
        r = local(args.size, args.extra)
        ratio = r["floor"] / r["end_to_end"] if r["end_to_end"] else float("nan")
        flat = max(r["rss"]) - min(r["rss"])
        ok &= r["status"] == "SUCCEEDED" and r["children_with_one_task"] == r["size"]
        ok &= r["throttled"] == 0 and ratio >= FLOOR_TARGET
        print(f"Array of {r['size']} children on the local stack ({r['limits']})")
        print(f"  POST: {r['post_seconds'] * 1000:.0f} ms (the parent, at once)")
        print(f"  final: {r['status']}, summary {r['summary']}")
        print(f"  tasks: {r['tasks']}, children with exactly one task: "
              f"{r['children_with_one_task']} of {r['size']}; RunTask throttled "
              f"{r['throttled']} times (target 0)")  # fmt: skip
        print(f"  end to end: {r['end_to_end']:.1f} s; the launch rate's floor "
              f"{r['floor']:.1f} s; floor / actual = {ratio:.2f} (target >= {FLOOR_TARGET})")  # fmt: skip
        print(f"  most child tasks at once: {r['peak']}")
        print("  stack RSS (start, half, end): "
              + ", ".join(f"{v:.0f} MB" for v in r["rss"]) + f" (spread {flat:.0f} MB)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

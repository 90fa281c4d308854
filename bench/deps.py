"""Job dependencies at scale: a fan-out (many jobs waiting on one) and a fan-in (one job waiting
on a whole array), each figure printed beside its target (issue 23).

1. Metered, in-process (bench/harness.py: the real handlers on moto): --metered dependents on
   one job, then one job on an array of --metered children. Every DynamoDB write is sorted by
   the item it writes: from the dependency's end until every dependent is launched, the writes
   of each dependent's own item by the move they make (its release; its launch, as any job's
   launch), the launch governor's, the rest. Prints writes per released dependent (target
   <= 2) and, for the fan-in, the writes of the waiting job's item while the array ran (target:
   none before its release: no per-child bookkeeping).
2. On the local stack with Fargate's launch limits: --jobs dependents (condition `finished`) on
   one long job, cancelled once they are all submitted, then one job after an array of --jobs
   children. Prints the release latency (the dependency's
   finished_at to each dependent's released_at, as the tracker recorded them) p50/p95 beside
   the launch rate's own queueing (releases go out a page at a time under the governor: the
   k-th launch cannot go before (k - burst) / rate), that RunTask was never throttled, one
   task per dependent, every dependent SUCCEEDED. Target: p95 of (latency - that queueing)
   <= 2 s.

    python bench/deps.py [--metered 200] [--jobs 1000] [--skip-local | --skip-metered]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402  (sets the bench's environment first)
from bench.ddb_meter import DdbMeter  # noqa: E402

WRITES_TARGET = 2  # per released dependent (issue 23)
RELEASE_TARGET_SECONDS = 2.0  # p95, beyond the launch rate's own queueing
STOPPED_SUCCESS = ("task_pending", "task_running", "task_stopped_success")
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
OWN_ITEM = ("release", "dependent, other")  # the WriteSorter's counts of a watched job's item


class WriteSorter:
    """Every DynamoDB write the models' client makes, by the item it writes and what it does."""

    def __init__(self) -> None:
        from jobtracker.adapters.models import models_client

        self.watching: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.client = models_client()
        for op in (*WRITES, "BatchWriteItem"):
            self.client.meta.events.register(f"before-parameter-build.dynamodb.{op}", self._seen)

    def close(self) -> None:
        for op in (*WRITES, "BatchWriteItem"):
            self.client.meta.events.unregister(f"before-parameter-build.dynamodb.{op}", self._seen)

    def _seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        if op == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                for r in requests:
                    item = (r.get("PutRequest") or {}).get("Item") or {}
                    self._count(item.get("pk", {}).get("S", ""), "edge", {})
            return
        pk = (params.get("Key") or params.get("Item") or {}).get("pk", {}).get("S", "")
        self._count(pk, op, params)

    def _count(self, pk: str, op: str, params: dict[str, Any]) -> None:
        from jobtracker.adapters.models import JobRecord

        if pk.startswith("governor#"):
            self.counts["governor"] += 1
        elif pk.startswith("edge#"):
            self.counts["edge"] += 1
        elif pk in self.watching:
            names = set((params.get("ExpressionAttributeNames") or {}).values())
            released = JobRecord.released_at.attr_name  # what only a release writes
            self.counts["release" if released in names else "dependent, other"] += 1
        else:
            self.counts["other"] += 1

    def reset(self) -> Counter[str]:
        found, self.counts = self.counts, Counter()
        return found


def wait_on(h: harness.Harness, job_id: str) -> dict[str, Any]:
    """POST /jobs of a job after `job_id` (202: WAITING) through create_job, timed."""
    return accepted(h, {"definition": "demo", "depends_on": [{"job_id": job_id}]})


def accepted(h: harness.Harness, body: dict[str, Any]) -> dict[str, Any]:
    """POST /jobs of a job that is not launched at once (202) through create_job, timed."""
    from tests.helpers import call_api

    reply = h._timed(harness.CREATE_JOB, 1, lambda: call_api("POST", "/jobs", body))
    assert reply.status == 202, reply.body
    job: dict[str, Any] = reply.body
    return job


def metered(n: int) -> dict[str, Any]:
    from moto import mock_aws

    os.environ.update({"LAUNCH_RATE": "1000", "LAUNCH_BURST": "10000"})
    with mock_aws(), DdbMeter(reuse_images=True) as meter:
        h = harness.Harness(meter)
        h.submit({"definition": "demo"})  # warm-up: imports, clients (a warm Lambda)
        h.drain()
        sorter = WriteSorter()
        # -- fan-out: n jobs on one
        first = h.submit({"definition": "demo"})
        h.drain()
        h.notify()
        sorter.reset()
        waiting = [wait_on(h, first["id"]) for _ in range(n)]
        at_submit = sorter.reset()
        assert all(w["status"] == "WAITING" for w in waiting), {w["status"] for w in waiting}
        sorter.watching = {w["id"] for w in waiting}
        for name in STOPPED_SUCCESS:
            h.event(h.job(first["id"]), name)
        for _ in range(50):
            h.notify()
            if not h.drain():
                break
        released = sorter.reset()
        statuses = Counter(h.job(w["id"])["status"] for w in waiting)
        # -- fan-in: one job on an array of n children
        parent = accepted(h, {"definition": "demo", "array": {"size": n}})
        h.drain()
        after = wait_on(h, parent["id"])
        sorter.watching = {after["id"]}
        sorter.reset()
        for _ in range(n * 2):
            h.drain()
            with meter.paused():
                from jobtracker.wiring import default_deps

                kids = default_deps().repo.children(parent["id"], range(n))
            live = [k for k in kids if k.current.task_arn and not k.status.terminal]
            for kid in live:
                job = h.job(kid.job_id)
                for name in STOPPED_SUCCESS:
                    h.event(job, name)
            h.drain()
            h.notify()
            if h.job(parent["id"])["status"] == "SUCCEEDED":
                break
        during = dict(sorter.counts)  # before the parent's end reached the waiting job
        for _ in range(10):
            h.notify()
            if not h.drain():
                break
        fan_in = sorter.reset()
        sorter.close()
        return {
            "n": n,
            "at_submit": at_submit,
            "released": released,
            "statuses": statuses,
            "fan_in_during": during,
            "fan_in": fan_in,
            "fan_in_status": h.job(after["id"])["status"],
        }


def local(n: int, extra: list[str]) -> dict[str, Any]:
    import tempfile

    from bench.local import TaskWatcher, governor_of, ideal_queueing, parse, percentile
    from jobtracker.adapters.governor import MARGIN
    from tests.e2e.conftest import Stack, start_stack, stop_stack

    governor = governor_of(extra)
    quick = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
    with tempfile.TemporaryDirectory() as work:
        proc, info = start_stack(Path(work), *extra)
        try:
            stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], Path(work))
            watcher = TaskWatcher(stack, every=2.0)
            # -- fan-out: n dependents on one job that runs until it is cancelled (their
            # condition `finished`), so every dependent is submitted while it runs
            long = {"kind": "long", "units": 3600, "unit_seconds": 1}
            status, first = stack.request(
                "POST", "/jobs", {"definition": "demo", "parameters": long}
            )
            assert status in (201, 202), first
            body = {**quick, "depends_on": [{"job_id": first["id"], "condition": "finished"}]}

            def post(_: int) -> dict[str, Any]:
                code, job = stack.request("POST", "/jobs", body)
                assert code == 202, job
                return job

            t0 = time.time()
            with ThreadPoolExecutor(8) as pool:
                waiting = list(pool.map(post, range(n)))
            submit_seconds = time.time() - t0
            early = sum(1 for w in waiting if w["status"] != "WAITING")
            code, _ = stack.request("POST", f"/jobs/{first['id']}/cancel", {})
            assert code in (200, 202), code
            done_first = stack.wait(first["id"], timeout=600)
            ends = [stack.wait(w["id"], timeout=1200) for w in waiting]
            finished = parse(done_first["finished_at"]) or 0.0
            latencies = sorted((parse(j["released_at"]) or finished) - finished for j in ends)
            # -- fan-in: one job after an array of n children
            status, parent = stack.request("POST", "/jobs", {**quick, "array": {"size": n}})
            assert status in (201, 202), parent
            code, after = stack.request(
                "POST", "/jobs", {**quick, "depends_on": [{"job_id": parent["id"]}]}
            )
            assert code == 202, after
            done_parent = stack.wait(parent["id"], timeout=3600)
            done_after = stack.wait(after["id"], timeout=600)
            tasks = watcher.stop()
        finally:
            stop_stack(proc)
    ideal = ideal_queueing([0.0] * n, governor)  # all launchable at the dependency's end
    excess = sorted(lat - q for lat, q in zip(latencies, ideal, strict=True))
    per_job = Counter(str(t.get("startedBy")) for t in tasks)
    fan_in = (parse(done_after["released_at"]) or 0.0) - (parse(done_parent["finished_at"]) or 0.0)
    return {
        "n": n,
        "limits": f"ECS {1 / (governor.interval * MARGIN):g} launches/s after a burst of"
        f" {governor.burst + 1}",
        "submit_seconds": submit_seconds,
        "early": early,
        "statuses": Counter(j["status"] for j in ends),
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "ideal_p50": percentile(ideal, 0.5),
        "ideal_p95": percentile(ideal, 0.95),
        "excess_p95": percentile(excess, 0.95),
        "one_task": sum(1 for w in waiting if per_job.get(w["id"]) == 1),
        "throttled": watcher.throttled,
        "fan_in_seconds": fan_in,
        "fan_in_status": done_after["status"],
        "parent_status": done_parent["status"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metered", type=int, default=200, help="dependents, metered")
    parser.add_argument("--jobs", type=int, default=1000, help="dependents on the local stack")
    args = harness.two_parts(parser)
    ok = True
    if not args.skip_metered:
        m = metered(args.metered)
        n = m["n"]
        released = m["released"]
        per = sum(released[k] for k in OWN_ITEM) / n
        ok &= released["release"] / n <= WRITES_TARGET and m["statuses"] == {"STARTING": n}
        waited = sum(m["fan_in_during"].get(k, 0) for k in OWN_ITEM)
        ok &= waited == 0 and m["fan_in"].get("release") == 1
        print(f"Fan-out: {n} jobs waiting on one, metered in-process")
        print(f"  at submission: {dict(m['at_submit'])} for {n} dependents (each its job and"
              " an edge; 'other' holds the dependency's mark, once)")  # fmt: skip
        print(f"  from its end to every dependent launched: {dict(released)}")
        print(f"  writes per released dependent: {released['release'] / n:.2f} its release"
              f" (target <= {WRITES_TARGET}); {per:.2f} on its item with its launch,"
              f" {released['governor'] / n:.2f} on the governor (one write a page)")  # fmt: skip
        print(f"  dependents: {dict(m['statuses'])}")
        print(f"Fan-in: one job on an array of {n}, metered in-process")
        print(f"  writes of the waiting job's item while the array ran: {waited}"
              f" (target 0); at the array's end: {dict(m['fan_in'])}; it is "
              f"{m['fan_in_status']}")  # fmt: skip
    if not args.skip_local:
        r = local(args.jobs, args.extra)
        n = r["n"]
        ok &= r["statuses"] == {"SUCCEEDED": n} and r["one_task"] == n and r["throttled"] == 0
        ok &= r["excess_p95"] <= RELEASE_TARGET_SECONDS and r["fan_in_status"] == "SUCCEEDED"
        print(f"Fan-out of {n} dependents on the local stack ({r['limits']})")
        print(f"  submitted in {r['submit_seconds']:.1f} s, {r['early']} not WAITING"
              f" (target 0); final: {dict(r['statuses'])}")  # fmt: skip
        print(f"  release latency (its end -> released): p50 {r['p50']:.2f} s, p95"
              f" {r['p95']:.2f} s; the launch rate's own queueing p50 {r['ideal_p50']:.2f} s,"
              f" p95 {r['ideal_p95']:.2f} s")  # fmt: skip
        print(f"  p95 beyond that queueing: {r['excess_p95']:.2f} s"
              f" (target <= {RELEASE_TARGET_SECONDS:g} s)")  # fmt: skip
        print(f"  dependents with exactly one task: {r['one_task']} of {n}; RunTask throttled"
              f" {r['throttled']} times (target 0)")  # fmt: skip
        print(f"Fan-in: one job after an array of {n} on the local stack")
        print(f"  array {r['parent_status']}; the job released {r['fan_in_seconds']:.2f} s"
              f" after the array's end; it ended {r['fan_in_status']}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

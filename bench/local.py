"""The local stack end to end: N zero-second jobs submitted from a few threads, then waited for.

Prints jobs/s end to end (first submit to the last job's finished_at, as the tracker recorded
it), the submit rate, p50/p95 from submit to RUNNING and to SUCCEEDED, the most tasks running
at once, and the stack process's RSS at start and end. Anchor: one AWS account's Fargate
launches 20 tasks/s (issue 12's target for the local stack on 2 cores).

It also prints the most the launch limits allow: the functions' governor keeps 10% under ECS's
rate, so with Fargate's limits a 1,000-job run cannot pass 20.0 jobs/s, on AWS or here. The
stack's own speed shows with the limits raised: `-- --ecs-launch-rate 50 --ecs-launch-burst 100`.

    python bench/local.py [--jobs 300] [--threads 8] [--keyed | --mixed]

`--keyed` sends every POST with an Idempotency-Key (the path that used to copy the table);
`--mixed` alternates keyed and unkeyed POSTs and prints the latency of each, for the first and
the last tenth of the run (a keyed POST used to slow down as the table grew). With thousands of
jobs, it also prints the RSS every tenth of the jobs submitted, the ECS throttles and the tasks
per job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobtracker.adapters.governor import MARGIN, DynamoGovernor  # noqa: E402
from jobtracker_local.ecs import DEFAULT_LAUNCH_BURST, DEFAULT_LAUNCH_RATE  # noqa: E402
from tests.e2e.conftest import Stack, peak_concurrency, start_stack, stop_stack  # noqa: E402

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"}
ANCHOR_JOBS_PER_SECOND = 20.0  # Fargate's task launch rate per account and region
QUEUEING_TARGET = 1.3  # p95 submit -> RUNNING, as a multiple of the ideal (issue 24)
WRITES_PER_LAUNCH_TARGET = 1.3  # job writes per launch (issue 24)


def rss_mb(pid: int) -> float:
    """Resident memory of the stack's own process (its task processes come and go)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU, its exited and waited-for children's: the task processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    own = (int(fields[11]) + int(fields[12])) / tick
    children = (int(fields[13]) + int(fields[14])) / tick
    return own, children


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def helper_cpu(pid: int, name: str, children: bool = False) -> float:
    """CPU of the stack's helper process whose command line holds `name` (and, with
    `children`, of its exited children: the zygote's are the task processes)."""
    total = 0.0
    for child in child_pids(pid):
        if name in Path(f"/proc/{child}/cmdline").read_text():
            own, theirs = cpu_seconds(child)
            total += own + theirs if children else own
    return total


def moto_cpu(pid: int) -> float:
    """CPU of moto's server, when the stack runs it as a process of its own."""
    return helper_cpu(pid, "moto_server")


def tasks_cpu(pid: int) -> float:
    """CPU of the task processes: the stack's exited children, and the zygote's that forks
    them (its own included: it is the tasks' start)."""
    return cpu_seconds(pid)[1] + helper_cpu(pid, "jobtracker_local.zygote", children=True)


def launch_cap(jobs: int, extra: list[str]) -> tuple[float, str]:
    """The most jobs/s the launch limits allow `jobs` jobs submitted at once (the governor lets
    its burst go at once, then one per interval), and the limits in words."""
    governor = governor_of(extra)
    rate, burst = 1 / (governor.interval * MARGIN), governor.burst + 1
    seconds = max(0, jobs - governor.burst) * governor.interval
    words = (
        f"ECS {rate:g} launches/s after a burst of {burst}, the governor at"
        f" {1 / governor.interval:g}/s"
    )
    return (jobs / seconds if seconds else float("inf")), words


def governor_of(extra: list[str]) -> DynamoGovernor:
    """The governor the stack's functions run with the ECS limits in `extra` (it is never
    called here: its interval and burst say what the launch rate allows)."""
    limits = argparse.ArgumentParser(add_help=False)
    limits.add_argument("--ecs-launch-rate", type=float, default=DEFAULT_LAUNCH_RATE)
    limits.add_argument("--ecs-launch-burst", type=float, default=DEFAULT_LAUNCH_BURST)
    known, _ = limits.parse_known_args(extra)
    return DynamoGovernor("bench", known.ecs_launch_rate, int(known.ecs_launch_burst))


def ideal_queueing(arrivals: list[float], governor: DynamoGovernor) -> list[float]:
    """How long each launch must wait, at best, under the governor's rate, for jobs that became
    launchable at `arrivals` (epoch seconds): GCRA run over them in order, each launching at
    the first moment its rate allows. The floor no launcher of this design can beat."""
    ahead = (governor.burst - 1) * governor.interval
    tat = float("-inf")
    waits = []
    for at in sorted(arrivals):
        goes = max(at, tat - ahead)
        tat = max(tat, goes) + governor.interval
        waits.append(goes - at)
    return waits


def launch_writes(stack: Stack, ids: list[str]) -> int:
    """The writes each job's launch made beyond its one record of the task: every wait for a
    launch slot and every failed launch is one write, and each adds one to the attempt's
    counters (lw, lf), read here from the table."""
    ddb = stack.client("dynamodb")
    (table,) = ddb.list_tables()["TableNames"]
    extra = 0
    for at in range(0, len(ids), 100):
        keys = [{"pk": {"S": i}} for i in ids[at : at + 100]]
        ask: dict[str, Any] = {table: {"Keys": keys, "ProjectionExpression": "lw, lf"}}
        while ask:
            got = ddb.batch_get_item(RequestItems=ask)
            for item in got["Responses"][table]:
                extra += sum(int(item[k]["N"]) for k in ("lw", "lf") if k in item)
            ask = got.get("UnprocessedKeys") or {}
    return extra


def parse(ts: str | None) -> float | None:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() if ts else None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class TaskWatcher:
    """Every task the local ECS describes, as last seen, polled in the background for the whole
    run: the local ECS forgets a stopped task after its retention, as ECS does. Each look asks
    only for the tasks changed since the last one (/_tasks?after=N): listing every task, ten
    thousand of them, every look cost the stack more the longer a run went."""

    def __init__(self, stack: Stack, every: float) -> None:
        self.stack, self.every = stack, every
        self.tasks: dict[str, dict[str, Any]] = {}
        self.throttled = 0
        self.changes = -1  # the local ECS's count of changes at the last look
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def poll(self) -> None:
        req = urllib.request.Request(
            f"{self.stack.ecs}/_tasks?after={self.changes}",
            headers={"Authorization": f"Bearer {self.stack.token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            answer = json.loads(resp.read())
        self.throttled = answer.get("throttled", 0)
        for task in answer["tasks"]:
            self.tasks[task["taskArn"]] = task
        self.changes = answer["changes"]

    def _run(self) -> None:
        while not self.done.wait(self.every):
            try:
                self.poll()
            except OSError:  # one failed look (a busy stack's timeout) must not end the watch
                continue

    def stop(self) -> list[dict[str, Any]]:
        self.done.set()
        self.thread.join()
        self.poll()
        return list(self.tasks.values())

    def stopped_jobs(self) -> set[str]:
        return {
            str(t.get("startedBy"))
            for t in list(self.tasks.values())
            if t.get("lastStatus") == "STOPPED"
        }


def submit_one(stack: Stack, keyed: bool) -> tuple[dict[str, Any], float]:
    """The job, and how long its POST took."""
    body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
    t0 = time.perf_counter()
    if not keyed:
        job = stack.submit(body)
        return job, time.perf_counter() - t0
    status, job = stack.request(
        "POST", "/jobs", body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert status in (201, 202), job
    return dict(job), time.perf_counter() - t0


def latency_line(label: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{label} p50 {statistics.median(ms):5.0f} ms, p95 {percentile(ms, 0.95):5.0f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=8)
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--keyed", action="store_true")
    how.add_argument("--mixed", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("extra", nargs="*", help="more arguments for the local stack")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jobtracker-local-bench-"))
    proc, info = start_stack(work, "--backoff-scale", "0.02", *args.extra)
    stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], work)
    rss_start = rss_mb(proc.pid)
    cpu_start, tasks_start = cpu_seconds(proc.pid)[0], tasks_cpu(proc.pid)
    moto_start = moto_cpu(proc.pid)
    try:
        started = time.time()
        rss_series: list[tuple[int, float]] = []
        every = max(100, args.jobs // 10)
        # Listing every task costs the stack more as they pile up: look less often then.
        watcher = TaskWatcher(stack, max(0.5, min(5.0, args.jobs / 1000)))

        def submit_nth(n: int) -> tuple[dict[str, Any], float]:
            if n % every == 0 and n:
                rss_series.append((n, rss_mb(proc.pid)))
            return submit_one(stack, args.keyed or (args.mixed and n % 2 == 0))

        with ThreadPoolExecutor(args.threads) as pool:
            submitted = list(pool.map(submit_nth, range(args.jobs)))
        submit_seconds = time.time() - started
        jobs = [job for job, _ in submitted]
        pending = {j["id"] for j in jobs}
        deadline = time.time() + args.timeout
        while pending and time.time() < deadline:
            stopped = watcher.stopped_jobs()
            ready = [i for i in pending if i in stopped]
            with ThreadPoolExecutor(args.threads) as pool:
                finished = [j for j in pool.map(stack.job, ready) if j["status"] in TERMINAL]
            pending -= {j["id"] for j in finished}
            time.sleep(watcher.every)
        with ThreadPoolExecutor(args.threads) as pool:
            final = list(pool.map(stack.job, [j["id"] for j in jobs]))
        tasks = watcher.stop()
        waits = launch_writes(stack, [j["id"] for j in jobs])
        rss_end = rss_mb(proc.pid)
        cpu_end, tasks_end = cpu_seconds(proc.pid)[0], tasks_cpu(proc.pid)
        moto_end = moto_cpu(proc.pid)
    finally:
        stop_stack(proc)
    statuses = Counter(j["status"] for j in final)
    to_running, to_done, finished_at = [], [], []
    for job in final:
        created = parse(job["created_at"])
        first = job["attempts"][0] if job["attempts"] else {}
        running, done = parse(first.get("started_at")), parse(job.get("finished_at"))
        if created is not None and running is not None:
            to_running.append(running - created)
        if created is not None and done is not None and job["status"] == "SUCCEEDED":
            to_done.append(done - created)
            finished_at.append(done)
    first_created = min(parse(j["created_at"]) or started for j in final)
    end_to_end = (max(finished_at) - first_created) if finished_at else float("nan")
    rate = len(finished_at) / end_to_end if finished_at else 0.0
    print(f"local stack: {args.jobs} zero-second jobs from {args.threads} threads")
    print(f"  statuses: {dict(statuses)}; not finished in time: {len(pending)}")
    submit_rate = args.jobs / submit_seconds
    allowed = 1 / governor_of(args.extra).interval
    print(
        f"  submit:     {submit_rate:6.1f} jobs/s ({submit_seconds:.1f} s),"
        f" {submit_rate / allowed:.1f} x the governor's launch rate"
    )
    print(
        f"  end to end: {rate:6.1f} jobs/s ({end_to_end:.1f} s), "
        f"{rate / ANCHOR_JOBS_PER_SECOND:.2f} x Fargate's 20 launches/s"
    )
    print(
        f"  submit -> RUNNING:   p50 {statistics.median(to_running):5.1f} s, "
        f"p95 {percentile(to_running, 0.95):5.1f} s"
    )
    if to_done:
        print(
            f"  submit -> SUCCEEDED: p50 {statistics.median(to_done):5.1f} s, "
            f"p95 {percentile(to_done, 0.95):5.1f} s"
        )
    ideal = percentile(
        ideal_queueing([parse(j["created_at"]) or 0.0 for j in final], governor_of(args.extra)),
        0.95,
    )
    measured = percentile(to_running, 0.95)
    print(
        f"  queueing: p95 submit -> RUNNING {measured:.1f} s, ideal {ideal:.1f} s"
        f" ({measured / ideal if ideal else float('inf'):.2f} x; target <= {QUEUEING_TARGET})"
    )
    launched = sum(1 for j in final if j["attempts"] and j["attempts"][0].get("task_arn"))
    per_launch = (launched + waits) / launched if launched else float("nan")
    print(
        f"  job writes per launch: {per_launch:.2f} (the record of its task, and {waits} waits"
        f" or failed launches in all; target <= {WRITES_PER_LAUNCH_TARGET})"
    )
    cap, limits = launch_cap(args.jobs, args.extra)
    print(
        f"  launch limits ({limits}) allow at most {cap:.1f} jobs/s for {args.jobs} jobs:"
        f" {rate / cap:.2f} of it"
    )
    print(f"  most tasks at once: {peak_concurrency(tasks)}")
    print(f"  stack RSS: {rss_start:.0f} MB at start, {rss_end:.0f} MB at end")
    if rss_series:
        series = ", ".join(f"{n:,}: {mb:.0f}" for n, mb in rss_series)
        print(f"  stack RSS (MB) by jobs submitted: {series}")
    ids = {j["id"] for j in jobs}
    per_job = Counter(t["startedBy"] for t in tasks if t.get("startedBy") in ids)
    print(
        f"  ECS throttled RunTask {watcher.throttled} times; tasks per job:"
        f" {dict(Counter(per_job[i] for i in ids))} (1: no double launch)"
    )
    tenth = max(1, args.jobs // 10)
    for part, first in (("first", 0), ("last", args.jobs - tenth)):
        chunk = list(enumerate(submitted))[first : first + tenth]
        if args.mixed:
            for keyed in (True, False):
                picked = [t for n, (_, t) in chunk if (n % 2 == 0) == keyed]
                label = "keyed  " if keyed else "unkeyed"
                print(latency_line(f"  POST {label} ({part} tenth):", picked))
        else:
            print(latency_line(f"  POST ({part} tenth):", [t for _, (_, t) in chunk]))
    ms_per_job = 1000 / args.jobs
    print(
        f"  CPU per job: stack {(cpu_end - cpu_start) * ms_per_job:.0f} ms, "
        f"moto {(moto_end - moto_start) * ms_per_job:.0f} ms, "
        f"task processes {(tasks_end - tasks_start) * ms_per_job:.0f} ms"
    )
    return 0 if statuses.get("SUCCEEDED", 0) == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())

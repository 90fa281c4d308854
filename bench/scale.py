"""Write-throughput ceiling from hot partitions: N jobs through their whole success lifecycle
(POST /jobs, task_pending, task_running, task_stopped_success) through the real handlers on moto
in-process, with the DynamoDB meter on; then, per index and for the table, how the write units
spread over hash-key values.

    python bench/scale.py [--jobs 2000] [--json]

One partition takes at most 1,000 WRU/s, and every item of one hash-key value in an index
shares that partition. So an index whose hottest hash-key value receives W WRU for N jobs caps
the system at 1,000 / (W / N) jobs per second, whatever the table's capacity (a GSI that cannot
keep up throttles the table's writes: GSI back-pressure). The table itself is keyed per item,
so its hottest key is one job's own item. The ceiling is the minimum over the indexes and the
table; target >= 1,000 jobs/s.

Caveats: the whole run is one burst, so a hash key that rotates with time (a day or minute
bucket) is measured as it behaves within one bucket; several cold hash keys can share a
partition, which does not lower the ceiling (DynamoDB splits partitions by load); and the
default on-demand table quota (40,000 WRU/s, raisable) is printed as a separate, account-level
limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# This bench measures the data model, not the account's launch limit: launches are not held
# back (the launch governor's one item still takes its write per launch, and is reported).
os.environ.update(LAUNCH_RATE="1000", LAUNCH_BURST="10000")

from bench import harness
from bench.ddb_meter import DdbMeter, MeterSnapshot, merge_snapshots

PARTITION_WRU_PER_S = 1000
TABLE_QUOTA_WRU_PER_S = 40_000
TARGET_JOBS_PER_S = 1000
EVENTS = ("task_pending", "task_running", "task_stopped_success")


@dataclass
class Spread:
    """How one index's (or the table's) write units spread over its hash-key values."""

    name: str
    kind: str  # "table" or e.g. "GSI KEYS_ONLY"
    hash_key: str
    wru: int
    wru_per_job: float
    distinct_keys: int
    hottest_key: str | None
    hottest_wru: int
    hottest_share: float
    hottest_wru_per_job: float
    ceiling_jobs_per_s: float | None  # None: nothing written


def spread(
    name: str, kind: str, hash_key: str, wru: int, by_key: dict[str, int], jobs: int
) -> Spread:
    if not by_key:
        return Spread(name, kind, hash_key, 0, 0.0, 0, None, 0, 0.0, 0.0, None)
    hottest, hot_wru = max(by_key.items(), key=lambda kv: kv[1])
    per_job = hot_wru / jobs
    return Spread(
        name,
        kind,
        hash_key,
        wru,
        wru / jobs,
        len(by_key),
        hottest,
        hot_wru,
        hot_wru / wru if wru else 0.0,
        per_job,
        PARTITION_WRU_PER_S / per_job,
    )


def spreads(snap: MeterSnapshot, jobs: int) -> list[Spread]:
    out = []
    for table in snap.tables.values():
        out.append(
            spread(table.name, "table", table.hash_key, table.wru, table.wru_by_hash_key, jobs)
        )
        for ix in table.indexes.values():
            out.append(
                spread(
                    ix.name,
                    f"{ix.kind} {ix.projection}",
                    ix.hash_key,
                    ix.wru,
                    ix.wru_by_hash_key,
                    jobs,
                )
            )
    return out


def drive(h: harness.Harness, jobs: int) -> dict[str, float]:
    """Every job through its success lifecycle, phase by phase (a burst); seconds per phase."""
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    submitted = [h.submit({"definition": "demo"}) for _ in range(jobs)]
    phases["submit"] = time.perf_counter() - t0
    for name in EVENTS:
        t0 = time.perf_counter()
        for job in submitted:
            h.event(job, name)
        phases[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    h.drain()
    phases["drain"] = time.perf_counter() - t0
    return phases


@dataclass
class WorkerResult:
    snapshot: MeterSnapshot
    phases: dict[str, float]
    statuses: set[str]
    seconds: float
    invocations: int  # handler invocations
    filtered: int  # fixture events the rule's pattern does not deliver


def worker(jobs: int) -> WorkerResult:
    """`jobs` lifecycles in this process's own moto, metered."""
    warnings.filterwarnings("ignore")
    from moto import mock_aws

    t0 = time.perf_counter()
    with mock_aws(), DdbMeter(reuse_images=True) as meter:
        h = harness.Harness(meter, notifier=False)
        meter.reset()
        phases = drive(h, jobs)
        snap = meter.reset()
        statuses = {h.job(j)["status"] for j in _sample_ids(h)}
    return WorkerResult(
        snap, phases, statuses, time.perf_counter() - t0, len(h.invocations), h.filtered_events
    )


def run(jobs: int, workers: int) -> list[WorkerResult]:
    """Split the jobs over worker processes (fork: each gets its own moto); their meters add up,
    hash-key by hash-key, to what one process running every job would have metered."""
    shares = [jobs // workers + (1 if i < jobs % workers else 0) for i in range(workers)]
    shares = [n for n in shares if n]
    if len(shares) == 1:
        return [worker(shares[0])]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(worker, shares))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="processes sharing the jobs (default: 2, or 1 on one core)",
    )
    parser.add_argument("--json", action="store_true", help="also print a machine-readable dict")
    args = parser.parse_args()
    jobs = max(1, args.jobs)

    started = time.perf_counter()
    results = run(jobs, max(1, args.workers))
    elapsed = time.perf_counter() - started
    snap = merge_snapshots([r.snapshot for r in results])
    sample = set().union(*(r.statuses for r in results))
    phases = {k: max(r.phases.get(k, 0.0) for r in results) for k in results[0].phases}

    rows = spreads(snap, jobs)
    invocations = sum(r.invocations for r in results)
    filtered = sum(r.filtered for r in results)
    print(
        f"{jobs} jobs, success lifecycle (POST /jobs + {', '.join(EVENTS)}), metered on moto: "
        f"{invocations} handler invocations; {filtered} events not selected by the "
        "on_task_state rule's pattern (template.yaml)"
    )
    print()
    header = (
        f"{'index':16s} {'kind':14s} {'hash key':9s} {'WRU/job':>8s} {'keys':>6s} "
        f"{'hottest key':24s} {'share':>6s} {'hot WRU/job':>11s} {'ceiling jobs/s':>15s}"
    )
    print(header)
    for r in rows:
        cap = f"{r.ceiling_jobs_per_s:15,.0f}" if r.ceiling_jobs_per_s else f"{'-':>15s}"
        hottest = (r.hottest_key or "-")[:24]
        print(
            f"{r.name[:16]:16s} {r.kind:14s} {r.hash_key[:9]:9s} {r.wru_per_job:8.2f} "
            f"{r.distinct_keys:6d} {hottest:24s} {r.hottest_share:6.1%} "
            f"{r.hottest_wru_per_job:11.4f} {cap}"
        )
    limited = [r for r in rows if r.ceiling_jobs_per_s is not None]
    worst = min(limited, key=lambda r: r.ceiling_jobs_per_s or 0.0) if limited else None
    ceiling = worst.ceiling_jobs_per_s if worst else None
    table_wru_per_job = sum(r.wru_per_job for r in rows if r.kind == "table")
    print()
    if worst is not None and ceiling is not None:
        verdict = "PASS" if ceiling >= TARGET_JOBS_PER_S else "FAIL"
        print(
            f"ceiling: {ceiling:,.0f} jobs/s, set by {worst.name} (hottest hash key "
            f"{worst.hottest_key!r}: {worst.hottest_share:.1%} of its writes)"
        )
        print(f"target >= {TARGET_JOBS_PER_S:,} jobs/s: {verdict}")
    else:
        verdict = "FAIL"
        print("no DynamoDB writes were metered: the lifecycle did not run (FAIL)")
    if table_wru_per_job:
        print(
            f"(account-level: the default on-demand table quota of {TABLE_QUOTA_WRU_PER_S:,} "
            f"WRU/s allows {TABLE_QUOTA_WRU_PER_S / table_wru_per_job:,.0f} jobs/s at "
            f"{table_wru_per_job:.2f} table WRU per job; raisable)"
        )
    if sample != {"SUCCEEDED"}:
        print(f"WARNING: sampled jobs ended {sorted(sample)}, not all SUCCEEDED")
    print()
    print(
        f"elapsed {elapsed:.1f} s with {len(results)} worker process(es); slowest worker's "
        "phases (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in phases.items())
        + f" ({invocations / elapsed:,.0f} handler invocations/s on moto, metered)"
    )
    if args.json:
        result: dict[str, Any] = {
            "jobs": jobs,
            "rows": [asdict(r) for r in rows],
            "ceiling_jobs_per_s": ceiling,
            "limited_by": worst.name if worst else None,
            "target_jobs_per_s": TARGET_JOBS_PER_S,
            "pass": verdict == "PASS",
            "calls": snap.calls,
            "elapsed_seconds": elapsed,
            "workers": len(results),
            "phases_seconds": phases,
            "sampled_final_statuses": sorted(sample),
        }
        print()
        print(json.dumps(result, indent=2, sort_keys=True))
    return 0 if sample == {"SUCCEEDED"} else 1  # a FAIL is a finding, a broken run an error


def _sample_ids(h: harness.Harness) -> list[str]:
    """The first, middle and last job submitted, for a status check."""
    ids = h.submitted_ids
    return [ids[0], ids[len(ids) // 2], ids[-1]] if ids else []


if __name__ == "__main__":
    sys.exit(main())

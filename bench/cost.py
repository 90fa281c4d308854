"""Cost per job, in $ per million jobs, of three job lifecycles run through the real handlers on
moto in-process, metered (bench/ddb_meter.py) and priced; side by side with the widely published
Step Functions Standard pattern for running an ECS task.

    python bench/cost.py [--repeat 5] [--json]

Scenarios: a success; a retryable failure (exit 2) retried once, then a success; a fatal failure
(OutOfMemoryError). Each is run once to warm up (imports, clients: a warm Lambda), then
`--repeat` times; figures are the mean per job.

What is counted, per job:
- DynamoDB: WRU of the table and of each index, RRU, by the meter (AWS's size rules, from the
  item images before and after each write; indexes found by DescribeTable).
- Lambda: invocations of create_job (POST /jobs), on_task_state (one per ECS event),
  retry_decider (one per SQS message) and the notifier (stream records / NOTIFIER_BATCH, an
  assumed batch size: the stream mapping's BatchSize is only an upper bound, and at low traffic
  its batching window closes on fewer records); GB-seconds = MemorySize from template.yaml x handler wall time measured
  in process on moto, rounded up to 1 ms per invocation. An ESTIMATE: no cold starts, and moto
  answers in well under a millisecond where AWS takes milliseconds (RunTask: tens to hundreds);
  the sensitivity line shows what 10 ms more per AWS call would add.
- SQS requests (send, receive, delete; polls that came back empty are a fixed cost of the event
  source mapping, not per job, and not counted), EventBridge PutEvents entries, SNS publishes,
  one API Gateway HTTP API request (POST /jobs).
Not counted (not per job, or the same for both designs): ECS/Fargate, ECS events on the default
bus (free), DynamoDB Streams reads by Lambda (free), CloudWatch Logs and metrics, KMS requests
behind encrypted queues and topics, the reconciler (one run a minute, whatever the load), storage.

Step Functions Standard, the "run an ECS task" pattern (as in cloudonaut's and the AWS
samples'): one execution per job, states RecordSubmitted (DynamoDB PutItem) -> RunTask
(ecs:runTask.sync, Retry block for the retryable failure, Catch for the rest) -> RecordResult
(DynamoDB UpdateItem) -> Succeed / Fail. Transitions counted as states entered, each retry
re-entering RunTask once; its DynamoDB writes metered the same way on a table without indexes;
the same API request (HTTP API -> StartExecution); no Lambda (the .sync integration waits for the
task itself). It keeps no attempt history, no listing indexes and publishes nothing (the
execution status events on the default bus are free), so it is the cheaper design by
construction: a conservative comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness
from bench.ddb_meter import DdbMeter, MeterSnapshot

# ---- prices: us-east-1, on-demand, no free tier (from /work/shared/reference/ecs.md; verify
# against the official pricing pages before publishing a figure) ------------------------------


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


PRICES: dict[str, Price] = {
    "lambda_request": Price(0.20 / 1e6, "request", "AWS Lambda pricing"),
    "lambda_gb_s_arm64": Price(0.0000133334, "GB-second (arm64)", "AWS Lambda pricing"),
    "lambda_gb_s_x86_64": Price(0.0000166667, "GB-second (x86_64)", "AWS Lambda pricing"),
    "ddb_wru": Price(0.625 / 1e6, "write request unit", "Amazon DynamoDB pricing (on-demand)"),
    "ddb_rru": Price(0.125 / 1e6, "read request unit", "Amazon DynamoDB pricing (on-demand)"),
    "sqs_request": Price(0.40 / 1e6, "request (64 KB)", "Amazon SQS pricing (standard)"),
    "eventbridge_event": Price(
        1.00 / 1e6, "custom event (64 KB)", "Amazon EventBridge pricing (event bus)"
    ),
    "sns_publish": Price(0.50 / 1e6, "publish (64 KB)", "Amazon SNS pricing (standard topic)"),
    "api_request": Price(1.00 / 1e6, "HTTP API request", "Amazon API Gateway pricing (HTTP API)"),
    "sfn_transition": Price(
        0.025 / 1000, "state transition", "AWS Step Functions pricing (Standard)"
    ),
}
NOTIFIER_BATCH = 10  # assumed stream records per notifier invocation
SENSITIVITY_MS = 10  # extra latency per AWS call for the sensitivity line
TARGET_PER_MILLION = 10.0
TARGET_RATIO = 0.1
MILLION = 1e6

BODY = {"definition": "demo"}


@dataclass(frozen=True)
class Scenario:
    name: str
    attempts: tuple[tuple[str, ...], ...]  # ECS events of each attempt
    final: str
    sfn_states: tuple[str, ...]


SCENARIOS = (
    Scenario(
        "success",
        (("task_pending", "task_running", "task_stopped_success"),),
        "SUCCEEDED",
        ("RecordSubmitted", "RunTask", "RecordResult", "Succeed"),
    ),
    Scenario(
        "one retry",
        (
            ("task_pending", "task_running", "task_stopped_exit_2"),
            ("task_pending", "task_running", "task_stopped_success"),
        ),
        "SUCCEEDED",
        ("RecordSubmitted", "RunTask", "RunTask (retry)", "RecordResult", "Succeed"),
    ),
    Scenario(
        "fatal",
        (("task_pending", "task_running", "task_stopped_oom"),),
        "FAILED",
        ("RecordSubmitted", "RunTask", "RecordResult", "Fail"),
    ),
)


# ---- usage of one job ----------------------------------------------------------------------------


@dataclass
class Usage:
    """Per job (a mean over the repeats)."""

    wru: dict[str, float] = field(default_factory=dict)  # "table" or index name -> WRU
    rru: float = 0.0
    invocations: dict[str, float] = field(default_factory=dict)  # function -> invocations
    billed_ms: dict[str, float] = field(default_factory=dict)  # function -> billed ms
    gb_s: float = 0.0
    handler_aws_calls: float = 0.0  # AWS calls made inside handlers
    sensitivity_gb_s: float = 0.0  # GB-s that SENSITIVITY_MS per such call would add
    sqs_requests: float = 0.0
    put_events_entries: float = 0.0
    sns_publishes: float = 0.0
    api_requests: float = 0.0
    stream_records: float = 0.0
    max_item_size: int = 0
    calls: dict[str, float] = field(default_factory=dict)  # every AWS call, service.Operation
    final_status: str = ""
    index_kinds: dict[str, str] = field(default_factory=dict)  # index -> "GSI KEYS_ONLY"
    filtered_events: float = 0.0  # fixture ECS events the rule's pattern does not deliver

    def scaled(self, factor: float) -> Usage:
        def scale(d: dict[str, float]) -> dict[str, float]:
            return {k: v * factor for k, v in d.items()}

        return Usage(
            scale(self.wru),
            self.rru * factor,
            scale(self.invocations),
            scale(self.billed_ms),
            self.gb_s * factor,
            self.handler_aws_calls * factor,
            self.sensitivity_gb_s * factor,
            self.sqs_requests * factor,
            self.put_events_entries * factor,
            self.sns_publishes * factor,
            self.api_requests * factor,
            self.stream_records * factor,
            self.max_item_size,
            scale(self.calls),
            self.final_status,
            dict(self.index_kinds),
            self.filtered_events * factor,
        )

    def add(self, other: Usage) -> None:
        for mine, theirs in (
            (self.wru, other.wru),
            (self.invocations, other.invocations),
            (self.billed_ms, other.billed_ms),
            (self.calls, other.calls),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0.0) + v
        self.rru += other.rru
        self.gb_s += other.gb_s
        self.handler_aws_calls += other.handler_aws_calls
        self.sensitivity_gb_s += other.sensitivity_gb_s
        self.sqs_requests += other.sqs_requests
        self.put_events_entries += other.put_events_entries
        self.sns_publishes += other.sns_publishes
        self.api_requests += other.api_requests
        self.stream_records += other.stream_records
        self.max_item_size = max(self.max_item_size, other.max_item_size)
        self.final_status = other.final_status
        self.index_kinds.update(other.index_kinds)
        self.filtered_events += other.filtered_events


def short(code_uri: str) -> str:
    return code_uri.rsplit("/", 1)[-1]


def usage_of(
    snap: MeterSnapshot,
    invocations: list[harness.Invocation],
    configs: dict[str, harness.FunctionConfig],
) -> Usage:
    u = Usage()
    for table in snap.tables.values():
        u.wru["table"] = u.wru.get("table", 0.0) + table.wru
        for ix in table.indexes.values():
            u.wru[ix.name] = u.wru.get(ix.name, 0.0) + ix.wru
            u.index_kinds[ix.name] = f"{ix.kind} {ix.projection}"
        u.rru += table.rru
        u.max_item_size = max(u.max_item_size, table.max_item_size)
    for inv in invocations:
        fn = short(inv.function)
        config = configs.get(inv.function, harness.FunctionConfig(128, "x86_64"))
        if inv.function == harness.NOTIFIER:
            count = inv.items / NOTIFIER_BATCH
            u.stream_records += inv.items
        elif inv.function == harness.RETRY_DECIDER:
            count = inv.items
        else:
            count = 1
        u.invocations[fn] = u.invocations.get(fn, 0.0) + count
        ms = math.ceil(inv.seconds * 1000)
        u.billed_ms[fn] = u.billed_ms.get(fn, 0.0) + ms
        u.gb_s += config.memory_mb / 1024 * ms / 1000
        u.handler_aws_calls += inv.aws_calls
        u.sensitivity_gb_s += config.memory_mb / 1024 * inv.aws_calls * SENSITIVITY_MS / 1000
    u.sqs_requests = sum(n for k, n in snap.billable.items() if k.startswith("sqs."))
    u.put_events_entries = snap.billable.get("events.PutEvents", 0)
    u.sns_publishes = snap.billable.get("sns.Publish", 0) + snap.billable.get("sns.PublishBatch", 0)
    u.api_requests = 1
    u.calls = {k: float(v) for k, v in snap.calls.items()}
    return u


def run_job(h: harness.Harness, scenario: Scenario) -> str:
    job = h.submit(BODY)
    for attempt, events in enumerate(scenario.attempts, start=1):
        if attempt > 1:
            job = h.job(job["id"])  # the new attempt's task ARN
            if len(job.get("attempts", [])) < attempt:
                raise RuntimeError(f"attempt {attempt} was not launched: {job.get('status')}")
        for name in events:
            h.event(job, name, attempt)
        h.drain()
    h.notify()
    return str(h.job(job["id"])["status"])


def measure(
    h: harness.Harness,
    scenario: Scenario,
    repeat: int,
    configs: dict[str, harness.FunctionConfig],
) -> Usage:
    run_job(h, scenario)  # warm-up: imports, clients, caches (a warm Lambda)
    runs = []
    for _ in range(repeat):
        h.meter.reset()
        h.invocations.clear()
        filtered = h.filtered_events
        status = run_job(h, scenario)
        one = usage_of(h.meter.reset(), list(h.invocations), configs)
        one.final_status = status
        one.filtered_events = h.filtered_events - filtered
        runs.append(one)
    total = Usage()
    for one in runs:
        total.add(one)
    mean = total.scaled(1 / repeat)
    # Durations: the median run (a stray pause of the host would skew a mean); counts: the mean.
    mean.billed_ms = {
        fn: statistics.median(r.billed_ms.get(fn, 0.0) for r in runs) for fn in mean.billed_ms
    }
    mean.gb_s = statistics.median(r.gb_s for r in runs)
    return mean


# ---- Step Functions --------------------------------------------------------------------------------


def sfn_writes(meter: DdbMeter) -> tuple[float, float]:
    """WRU of RecordSubmitted (PutItem) and RecordResult (UpdateItem) of a representative job
    record, metered on a table without indexes."""
    import boto3

    ddb = boto3.client("dynamodb")
    with meter.paused():
        ddb.create_table(
            TableName="sfn-jobs",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
    meter.reset()
    job_id = "job-01JDA7M0Q4ZK3V9X8C2B6N5T1R"
    ddb.put_item(
        TableName="sfn-jobs",
        Item={
            "pk": {"S": job_id},
            "status": {"S": "PENDING"},
            "definition": {"S": "demo"},
            "input": {"S": json.dumps(BODY)},
            "execution_arn": {
                "S": f"arn:aws:states:us-east-1:123456789012:execution:jobtracker-jobs:{job_id}"
            },
            "created_at": {"S": "2026-11-24T19:28:00.000000+00:00"},
        },
    )
    put = meter.reset().wru
    ddb.update_item(
        TableName="sfn-jobs",
        Key={"pk": {"S": job_id}},
        UpdateExpression="SET #s = :s, task_arn = :t, exit_code = :e, finished_at = :f",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": {"S": "SUCCEEDED"},
            ":t": {
                "S": "arn:aws:ecs:us-east-1:123456789012:task/jobtracker-jobs/"
                "0123456789abcdef0123456789abcdef"
            },
            ":e": {"N": "0"},
            ":f": {"S": "2026-11-24T19:31:00.000000+00:00"},
        },
    )
    update = meter.reset().wru
    return float(put), float(update)


# ---- pricing -----------------------------------------------------------------------------------------


def lines_of(u: Usage, arch: str) -> list[tuple[str, float, float, str]]:
    """(label, quantity per job, $ per million jobs, detail)."""
    p = PRICES
    gb_s_price = p.get(f"lambda_gb_s_{arch}", p["lambda_gb_s_x86_64"]).usd
    out = []
    for name, units in u.wru.items():
        kind = u.index_kinds.get(name, "")
        label = "DynamoDB WRU, table" if name == "table" else f"  {name} ({kind})"
        out.append((label, units, units * p["ddb_wru"].usd * MILLION, ""))
    out.append(("DynamoDB RRU", u.rru, u.rru * p["ddb_rru"].usd * MILLION, ""))
    inv = sum(u.invocations.values())
    detail = ", ".join(f"{k} {v:g}" for k, v in u.invocations.items())
    out.append(("Lambda invocations", inv, inv * p["lambda_request"].usd * MILLION, detail))
    detail = ", ".join(f"{k} {v:g} ms" for k, v in u.billed_ms.items())
    out.append(("Lambda GB-s (estimate)", u.gb_s, u.gb_s * gb_s_price * MILLION, detail))
    out.append(
        ("SQS requests", u.sqs_requests, u.sqs_requests * p["sqs_request"].usd * MILLION, "")
    )
    out.append(
        (
            "EventBridge PutEvents entries",
            u.put_events_entries,
            u.put_events_entries * p["eventbridge_event"].usd * MILLION,
            "",
        )
    )
    out.append(
        ("SNS publishes", u.sns_publishes, u.sns_publishes * p["sns_publish"].usd * MILLION, "")
    )
    out.append(
        ("API requests", u.api_requests, u.api_requests * p["api_request"].usd * MILLION, "")
    )
    return out


def sfn_lines(
    scenario: Scenario, put_wru: float, update_wru: float
) -> list[tuple[str, float, float]]:
    p = PRICES
    transitions = len(scenario.sfn_states)
    wru = put_wru + update_wru
    return [
        ("state transitions", transitions, transitions * p["sfn_transition"].usd * MILLION),
        ("DynamoDB WRU (2 writes)", wru, wru * p["ddb_wru"].usd * MILLION),
        ("API requests", 1, p["api_request"].usd * MILLION),
        ("Lambda", 0, 0.0),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="measured jobs per scenario")
    parser.add_argument("--json", action="store_true", help="also print a machine-readable dict")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from moto import mock_aws

    configs = harness.function_configs()
    arch = next(iter(configs.values())).architecture if configs else "x86_64"
    memory = {short(k): v.memory_mb for k, v in configs.items()}
    results: dict[str, Any] = {}
    with mock_aws(), DdbMeter() as meter:
        h = harness.Harness(meter)
        usages = {s.name: measure(h, s, args.repeat, configs) for s in SCENARIOS}
        put_wru, update_wru = sfn_writes(meter)

    names = [s.name for s in SCENARIOS]
    width = 32
    col = 26
    print("Cost per job, $ per million jobs (us-east-1, on-demand, no free tier)")
    print(
        f"Lambda: MemorySize {sorted(set(memory.values()))} MB from template.yaml, {arch}; "
        f"notifier invocations = stream records / {NOTIFIER_BATCH} (assumed batch size); "
        f"counts: mean of {args.repeat} jobs per scenario after a warm-up job, durations: median"
    )
    print()
    print(f"{'per job':{width}s}" + "".join(f"{n:>{col}s}" for n in names))
    print(f"{'':{width}s}" + "".join(f"{'qty':>12s}{'$/M jobs':>14s}" for _ in names))
    per_scenario = {n: lines_of(usages[n], arch) for n in names}
    labels: list[str] = []
    for n in names:
        for label, *_ in per_scenario[n]:
            if label not in labels:
                labels.append(label)
    totals = {n: sum(line[2] for line in per_scenario[n]) for n in names}
    for label in labels:
        row = f"{label:{width}s}"
        for n in names:
            found = next((line for line in per_scenario[n] if line[0] == label), None)
            row += f"{found[1]:12.4g}{found[2]:14.3f}" if found else f"{'-':>12s}{'-':>14s}"
        print(row)
    print(f"{'total':{width}s}" + "".join(f"{'':12s}{totals[n]:14.3f}" for n in names))
    print()
    for n in names:
        u = usages[n]
        lambda_detail = next(line[3] for line in per_scenario[n] if line[0] == "Lambda invocations")
        ms_detail = next(line[3] for line in per_scenario[n] if line[0].startswith("Lambda GB-s"))
        calls = ", ".join(f"{k} {v:g}" for k, v in sorted(u.calls.items()))
        print(f"[{n}] final status {u.final_status}; max item {u.max_item_size} B")
        print(f"    Lambda: {lambda_detail}; billed {ms_detail}")
        print(
            f"    ECS events: {u.invocations.get('on_task_state', 0):g} delivered, "
            f"{u.filtered_events:g} not selected by the rule's pattern (template.yaml); "
            f"stream records {u.stream_records:g}"
        )
        print(f"    AWS calls: {calls}")
    print()
    gb_price = PRICES.get(f"lambda_gb_s_{arch}", PRICES["lambda_gb_s_x86_64"]).usd
    print(
        "Lambda duration is an ESTIMATE: handler wall time in process on moto (rounded up to "
        "1 ms per invocation), no cold start, no network latency. Sensitivity: "
        f"+{SENSITIVITY_MS} ms per AWS call made in a handler adds "
        + ", ".join(
            f"{n} +${usages[n].sensitivity_gb_s * gb_price * MILLION:.3f}/M "
            f"({usages[n].handler_aws_calls:g} calls)"
            for n in names
        )
    )
    print()

    print("Step Functions Standard, same job (RecordSubmitted -> RunTask .sync -> RecordResult)")
    print(f"{'per job':{width}s}" + "".join(f"{n:>{col}s}" for n in names))
    sfn = {n: sfn_lines(s, put_wru, update_wru) for n, s in zip(names, SCENARIOS, strict=True)}
    for i, (label, _, _) in enumerate(sfn[names[0]]):
        print(
            f"{label:{width}s}"
            + "".join(f"{sfn[n][i][1]:12.4g}{sfn[n][i][2]:14.3f}" for n in names)
        )
    sfn_totals = {n: sum(line[2] for line in sfn[n]) for n in names}
    print(f"{'total':{width}s}" + "".join(f"{'':12s}{sfn_totals[n]:14.3f}" for n in names))
    for s in SCENARIOS:
        print(f"    {s.name}: {' -> '.join(s.sfn_states)}")
    print()
    ratios = {n: totals[n] / sfn_totals[n] for n in names}
    print(f"{'ours / Step Functions':{width}s}" + "".join(f"{ratios[n]:{col}.3f}" for n in names))
    ok_abs = totals["success"] <= TARGET_PER_MILLION
    ok_ratio = ratios["success"] <= TARGET_RATIO
    print()
    print(
        f"target success <= ${TARGET_PER_MILLION:.2f}/M jobs: ${totals['success']:.3f} "
        f"{'PASS' if ok_abs else 'FAIL'}"
    )
    print(
        f"target success <= {TARGET_RATIO:g} x Step Functions "
        f"(${sfn_totals['success'] * TARGET_RATIO:.3f}): ratio {ratios['success']:.3f} "
        f"{'PASS' if ok_ratio else 'FAIL'}"
    )
    print()
    print("Prices:")
    for key, price in PRICES.items():
        print(
            f"    {key:22s} ${price.usd * MILLION:>10.4f} per million {price.unit:22s} [{price.source}]"
        )
    broken = [n for n, s in zip(names, SCENARIOS, strict=True) if usages[n].final_status != s.final]
    if broken:
        print(f"\nWARNING: unexpected final status in {broken}: the lifecycle did not complete")

    if args.json:
        results = {
            "prices": {k: asdict(v) for k, v in PRICES.items()},
            "assumptions": {
                "notifier_batch_size": NOTIFIER_BATCH,
                "lambda_memory_mb": memory,
                "lambda_architecture": arch,
                "repeat": args.repeat,
                "duration": "in-process wall time on moto, ceil 1 ms per invocation (estimate)",
            },
            "scenarios": {
                n: {
                    "usage": asdict(usages[n]),
                    "lines": [
                        {"item": label.strip(), "quantity": q, "usd_per_million": c}
                        for label, q, c, _ in per_scenario[n]
                    ],
                    "total_usd_per_million": totals[n],
                    "step_functions": {
                        "states": list(s.sfn_states),
                        "lines": [
                            {"item": label, "quantity": q, "usd_per_million": c}
                            for label, q, c in sfn[n]
                        ],
                        "total_usd_per_million": sfn_totals[n],
                    },
                    "ratio": ratios[n],
                }
                for n, s in zip(names, SCENARIOS, strict=True)
            },
            "targets": {
                "success_usd_per_million": {"limit": TARGET_PER_MILLION, "pass": ok_abs},
                "success_ratio_to_step_functions": {"limit": TARGET_RATIO, "pass": ok_ratio},
            },
        }
        print()
        print(json.dumps(results, indent=2, sort_keys=True))
    return 0 if not broken else 1


if __name__ == "__main__":
    sys.exit(main())

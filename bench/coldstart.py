"""Cold start: import-and-init time of each handler in a fresh interpreter.

Prints the median of several runs per handler and its ratio to the floor every Python Lambda
using AWS pays anyway: `import boto3; boto3.client("dynamodb")`. Target: the first call (the
handler's import and init, the data-access module and its first client; for an HTTP function
also a first request routed, checked and answered) <= 1.30 x the floor for an event function,
<= 1.70 x for an HTTP one (Powertools' resolver and pydantic, the API's models, are its price).

    python bench/coldstart.py [--runs 7] [FUNCTION ...]
    python bench/coldstart.py --instructions   (valgrind's instruction counts: slow, but the
                                               same on a busy machine as on a quiet one)
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENT_TARGET, HTTP_TARGET = 1.30, 1.70


def target(function: str) -> float:
    return HTTP_TARGET if function in FIRST_REQUEST else EVENT_TARGET


FLOOR = "import boto3; boto3.client('dynamodb')"
HANDLER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.handler)
"""
# What the first invocation adds before its first AWS call: the data-access module (the pynamodb
# models) and their client.
FIRST_CALL = """
import jobtracker.adapters.store, jobtracker.adapters.models as models
models.bind("jobs")
models.models_client()
"""
# An HTTP function's first call also routes and checks a request: one it refuses, so that it is
# answered without AWS (the routing, the query or body checks and the error's JSON all run).
FIRST_REQUEST = {
    "api": "http_event('GET', '/jobs', query='limit=0')",
    "create_job": "http_event('POST', '/jobs', {'definition': 'demo', 'unknown': 1})",
}


def first_call(function: str) -> str:
    """The code of a function's first call, after its module is loaded as `module`."""
    request = FIRST_REQUEST.get(function)
    if request is None:
        return FIRST_CALL
    return (
        FIRST_CALL
        + "from jobtracker_local.apigw import http_event\n"
        + f"assert module.app.resolve({request}, None)['statusCode'] == 422\n"
    )


TIMER = """
import time
_t0 = time.perf_counter()
{body}
print((time.perf_counter() - _t0) * 1000)
"""


def measure_pair(body: str, runs: int) -> tuple[float, float, float]:
    """Floor and body measured alternately, so machine noise hits both alike.
    Returns (floor ms, body ms, median of per-pair ratios)."""
    floors, bodies, ratios = [], [], []
    for _ in range(runs):
        f = measure(FLOOR)
        b = measure(body)
        floors.append(f)
        bodies.append(b)
        ratios.append(b / f)
    return statistics.median(floors), statistics.median(bodies), statistics.median(ratios)


@cache
def function_environment() -> dict[str, str]:
    """The literal variables template.yaml gives every function (what a deployed cold start
    runs with; references to other resources are left out)."""
    from jobtracker_local.template import load

    variables = load()["Globals"]["Function"]["Environment"]["Variables"]
    return {k: v for k, v in variables.items() if isinstance(v, str)}


def bench_environment() -> dict[str, str]:
    return {
        **os.environ,
        **function_environment(),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "PYTHONDONTWRITEBYTECODE": "0",
        # one string hash for every run: set and dict layouts (and so the counts) repeat
        "PYTHONHASHSEED": "0",
    }


def measure(body: str) -> float:
    """One fresh interpreter running `body`; its time in ms."""
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(body=body)],
        capture_output=True,
        text=True,
        env=bench_environment(),
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip().splitlines()[-1])


CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def instructions(body: str) -> int:
    """The instructions a fresh interpreter runs for `body` (callgrind counts them: the same
    on a busy machine as on a quiet one, unlike time). The body runs once first, uncounted, so
    that no count includes compiling a source edited since the last run: every count is of
    compiled (.pyc) modules, in every function alike."""
    subprocess.run(
        [sys.executable, "-c", body], capture_output=True, env=bench_environment(), cwd=ROOT
    )
    out = subprocess.run(
        [*CALLGRIND, sys.executable, "-c", body],
        capture_output=True,
        text=True,
        env=bench_environment(),
        check=True,
        cwd=ROOT,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count: {out.stderr[-500:]}")
    return int(found.group(1))


def handlers(only: list[str]) -> list[Path]:
    """Each function's app.py, by name; only those named when any are."""
    apps = sorted((ROOT / "functions").glob("*/app.py"))
    return [a for a in apps if not only or a.parent.name in only]


def main_instructions(only: list[str]) -> int:
    """Instructions of each first call against the floor's, an empty interpreter's taken off
    both; two at a time (about a minute each under valgrind)."""
    bodies = {"": "pass", "floor": FLOOR}
    for app in handlers(only):
        bodies[app.parent.name] = HANDLER.format(path=str(app)) + first_call(app.parent.name)
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(bodies, pool.map(instructions, bodies.values()), strict=True))
    empty, floor = counts.pop(""), counts.pop("floor")
    print(f"floor = import boto3 + client('dynamodb'): {(floor - empty) / 1e6:.0f} M instructions")
    worst = 0.0
    for name, count in counts.items():
        ratio = (count - empty) / (floor - empty)
        worst = max(worst, ratio / target(name))
        mark = "ok" if ratio <= target(name) else "OVER"
        print(
            f"{name:14s} first call {(count - empty) / 1e6:6.0f} M instructions ratio {ratio:.3f}"
            f" (target <= {target(name)}) {mark}"
        )
    print(f"worst first-call ratio against its target {worst:.3f} (<= 1 is within budget)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions with valgrind's callgrind instead of timing (slow, exact)",
    )
    parser.add_argument("functions", nargs="*", help="only these (default: every function)")
    args = parser.parse_args()
    if args.instructions:
        return main_instructions(args.functions)
    measure(FLOOR)  # warm the page cache and .pyc files once
    print(f"floor = import boto3 + client('dynamodb'); medians of {args.runs} alternating pairs")
    worst = 0.0
    for app in handlers(args.functions):
        body = HANDLER.format(path=str(app))
        first = body + first_call(app.parent.name)
        measure(first)
        floor, ms, ratio = measure_pair(body, args.runs)
        _, ready, ready_ratio = measure_pair(first, args.runs)
        # The target is on the first call: what an invocation pays before its first AWS call.
        worst = max(worst, ready_ratio / target(app.parent.name))
        mark = "ok" if ready_ratio <= target(app.parent.name) else "OVER"
        print(
            f"{app.parent.name:14s} floor {floor:6.1f} ms | import+init {ms:6.1f} ms"
            f" ratio {ratio:4.2f} | + data access & first client {ready:6.1f} ms"
            f" ratio {ready_ratio:4.2f} {mark}"
        )
    print(f"worst first-call ratio against its target {worst:.2f} (<= 1 is within budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Demo job kinds, chosen by the `kind` parameter (see README):

- succeed: {"seconds": N}                         work N seconds, exit 0
- exit:    {"code": C, "seconds": N}             work N seconds, exit C
- flaky:   {"fail_attempts": K, "seconds": N}    exit 2 on attempts 1..K, then succeed
- long:    {"units": U, "unit_seconds": S}       U units with progress logs and checkpoints;
                                                  a later attempt resumes where it stopped
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from jobtracker_worker.runtime import (
    EXIT_OK,
    EXIT_RETRYABLE,
    CheckpointStore,
    JobContext,
    JobError,
    Log,
    Shutdown,
    Unit,
    run_units,
)


def _sleep_units(seconds: float, step: float = 0.1) -> Iterator[tuple[str, Unit]]:
    remaining = max(0.0, seconds)
    i = 0
    while remaining > 0:
        chunk = min(step, remaining)
        remaining -= chunk
        i += 1
        yield f"tick-{i}", (lambda c=chunk: time.sleep(c))


def _number(params: dict[str, object], name: str, default: float) -> float:
    value = params.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise JobError(f"parameter {name!r} must be a non-negative number")
    return float(value)


def run_job(ctx: JobContext, shutdown: Shutdown, log: Log, checkpoints: CheckpointStore) -> int:
    params = ctx.parameters
    kind = params.get("kind", "succeed")
    if kind == "succeed":
        return run_units(_sleep_units(_number(params, "seconds", 1)), shutdown, log)
    if kind == "exit":
        code = int(_number(params, "code", 1))
        status = run_units(_sleep_units(_number(params, "seconds", 0.2)), shutdown, log)
        return status if status != EXIT_OK else code
    if kind == "flaky":
        status = run_units(_sleep_units(_number(params, "seconds", 0.2)), shutdown, log)
        if status != EXIT_OK:
            return status
        if ctx.attempt <= int(_number(params, "fail_attempts", 1)):
            log("flaky job failing on purpose", attempt=ctx.attempt)
            return EXIT_RETRYABLE
        return EXIT_OK
    if kind == "long":
        total = int(_number(params, "units", 10))
        unit_seconds = _number(params, "unit_seconds", 1)
        state = checkpoints.load(ctx.job_id)
        start = int(state.get("done", 0))
        if start:
            log("resuming from checkpoint", done=start, total=total)

        def units() -> Iterator[tuple[str, Unit]]:
            for n in range(start + 1, total + 1):
                yield str(n), (lambda: time.sleep(unit_seconds))

        def done(name: str) -> None:
            checkpoints.save(ctx.job_id, {"done": int(name)})
            log("progress", done=int(name), total=total)

        return run_units(units(), shutdown, log, on_done=done)
    raise JobError(f"unknown job kind {kind!r} (succeed, exit, flaky, long)")

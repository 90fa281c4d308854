"""Entry point of the worker container: `python -m jobtracker_worker.main`."""

from __future__ import annotations

import os
import sys

from jobtracker_worker.jobs import run_job
from jobtracker_worker.runtime import (
    EXIT_FAILED,
    EXIT_RETRYABLE,
    CheckpointStore,
    JobContext,
    JobError,
    Log,
    Shutdown,
)


def main() -> int:
    log = Log()
    try:
        ctx = JobContext.from_env()
    except JobError as exc:
        log("cannot start", error=str(exc))
        return EXIT_FAILED
    log = Log(job_id=ctx.job_id, attempt=ctx.attempt)
    shutdown = Shutdown(stop_timeout=ctx.stop_timeout, log=log)
    shutdown.install()
    log("job started", definition=ctx.definition, parameters=ctx.parameters)
    try:
        code = run_job(ctx, shutdown, log, CheckpointStore(os.environ.get("JOB_CHECKPOINT_DIR")))
    except JobError as exc:
        log("job failed", error=str(exc), retryable=exc.retryable)
        code = EXIT_RETRYABLE if exc.retryable else EXIT_FAILED
    except Exception as exc:  # an unexpected crash of the job's code is a plain failure
        log("job crashed", error=repr(exc))
        code = EXIT_FAILED
    shutdown.cancel_watchdog()
    log("job finished", exit_code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())

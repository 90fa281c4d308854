"""The worker runtime: what a job's container runs around the job's own code.

Contract with jobtracker (see README): reads JOB_ID, JOB_ATTEMPT, JOB_DEFINITION,
JOB_PARAMETERS; exit 0 = success, 2 = retryable failure, anything else = failure.

Graceful termination: on SIGTERM (ECS StopTask, Spot interruption, a cancel or a timeout) the
worker takes no new unit of work, lets the current unit finish and checkpoints, then exits with
the retryable code. If the unit cannot finish before the stop timeout (SIGKILL follows it), a
watchdog exits retryable just before. A second SIGTERM exits at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_RETRYABLE = 2
# Leave this much of the stop timeout for flushing logs and exiting before SIGKILL.
SAFETY_MARGIN_SECONDS = 2.0


class JobError(Exception):
    """A failure of the job itself; `retryable` chooses the exit code."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class JobContext:
    job_id: str
    attempt: int
    definition: str
    parameters: dict[str, Any]
    stop_timeout: float

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> JobContext:
        env = dict(os.environ if env is None else env)
        missing = [n for n in ("JOB_ID", "JOB_ATTEMPT") if not env.get(n)]
        if missing:
            raise JobError(f"missing environment: {', '.join(missing)}")
        try:
            parameters = json.loads(env.get("JOB_PARAMETERS") or "{}")
        except json.JSONDecodeError as exc:
            raise JobError(f"JOB_PARAMETERS is not JSON: {exc}") from exc
        if not isinstance(parameters, dict):
            raise JobError("JOB_PARAMETERS must be a JSON object")
        return cls(
            job_id=env["JOB_ID"],
            attempt=int(env["JOB_ATTEMPT"]),
            definition=env.get("JOB_DEFINITION", ""),
            parameters=parameters,
            stop_timeout=float(env.get("WORKER_STOP_TIMEOUT_SECONDS", "30")),
        )


class Log:
    """JSON lines on stdout, flushed per line (awslogs and the local stack read stdout)."""

    def __init__(self, stream: TextIO | None = None, **fields: Any) -> None:
        self.stream = stream or sys.stdout
        self.fields = fields
        # Re-entrant: the SIGTERM handler logs from the main thread, possibly while the main
        # thread is inside a log call; a plain lock would deadlock there.
        self.lock = threading.RLock()

    def __call__(self, message: str, **extra: Any) -> None:
        record = {"time": round(time.time(), 3), "message": message, **self.fields, **extra}
        with self.lock:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()


class CheckpointStore:
    """Where a job keeps its progress between attempts. Local: a folder (JOB_CHECKPOINT_DIR).
    On AWS, mount EFS at that path, or replace this with an S3-backed store."""

    def __init__(self, folder: str | None) -> None:
        self.folder = Path(folder) if folder else None

    def _path(self, job_id: str) -> Path | None:
        return self.folder / f"{job_id}.json" if self.folder else None

    def load(self, job_id: str) -> dict[str, Any]:
        path = self._path(job_id)
        if path is None or not path.exists():
            return {}
        return dict(json.loads(path.read_text()))

    def save(self, job_id: str, state: dict[str, Any]) -> None:
        path = self._path(job_id)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)  # atomic: a kill mid-write never leaves half a checkpoint


@dataclass
class Shutdown:
    """SIGTERM handling. `requested` stops new units; the watchdog enforces the deadline."""

    stop_timeout: float
    log: Log
    exit: Callable[[int], None] = os._exit
    requested: bool = False
    deadline: float | None = None
    signals: int = 0
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:
            self.log("second termination signal: exiting now", exit_code=EXIT_RETRYABLE)
            self.exit(EXIT_RETRYABLE)
            return
        self.requested = True
        budget = max(0.0, self.stop_timeout - SAFETY_MARGIN_SECONDS)
        self.deadline = time.monotonic() + budget
        self.log("termination requested: finishing the current unit", budget_seconds=budget)
        threading.Thread(target=self._watchdog, args=(budget,), daemon=True).start()

    def _watchdog(self, budget: float) -> None:
        # The kernel may hand a process signal to any thread that does not block it; a second
        # SIGTERM taken here would wait for the main thread's current sleep to end.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        if self._cancelled.wait(budget):
            return
        self.log(
            "stop timeout reached before the unit finished: exiting retryable",
            exit_code=EXIT_RETRYABLE,
        )
        self.exit(EXIT_RETRYABLE)

    def cancel_watchdog(self) -> None:
        self._cancelled.set()


Unit = Callable[[], None]


def run_units(
    units: Iterable[tuple[str, Unit]],
    shutdown: Shutdown,
    log: Log,
    on_done: Callable[[str], None] | None = None,
) -> int:
    """Run units in order; stop between units when termination was requested."""
    for name, unit in units:
        if shutdown.requested:
            log("stopping before the next unit", next_unit=name)
            return EXIT_RETRYABLE
        unit()
        if on_done is not None:
            on_done(name)
        log("unit done", unit=name)
    return EXIT_OK

"""The awslogs driver, locally: each task's output lines go to CloudWatch Logs (moto) under the
group and stream names ECS would use (`<prefix>/<container>/<task id>`), so the API reads a local
job's logs with the same code as on AWS.

Lines are batched: one PutLogEvents per stream every `interval` seconds, as the driver does
(it flushes every few seconds), and a last flush when the task ends.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# PutLogEvents takes at most 10,000 events (1 MB) a call.
MAX_BATCH = 10_000
MAX_MESSAGE_BYTES = 256 * 1024 - 26  # an event's limit, its 26 bytes of overhead included


@dataclass(frozen=True)
class LogConfiguration:
    """A container's awslogs options (from its task definition)."""

    group: str
    stream_prefix: str

    def stream_for(self, container: str, task_id: str) -> str:
        return f"{self.stream_prefix}/{container}/{task_id}"


def now_ms() -> int:
    return int(time.time() * 1000)


class LogShipper:
    """Collects lines per stream and ships them in batches from one thread."""

    def __init__(self, client: Callable[[], Any], interval: float = 0.5) -> None:
        self._make_client = client  # a CloudWatch Logs client, made on first use
        self._client: Any = None
        self.interval = interval
        self._pending: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._streams: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._ship_locks: dict[tuple[str, str], threading.Lock] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="log-shipper", daemon=True)
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def line(self, group: str, stream: str, message: bytes, at_ms: int | None = None) -> None:
        text = message.decode("utf-8", "replace").rstrip("\r\n")
        event = {"timestamp": at_ms or now_ms(), "message": text[:MAX_MESSAGE_BYTES] or " "}
        with self._lock:
            self._pending.setdefault((group, stream), []).append(event)

    def flush(self, only: tuple[str, str] | None = None) -> None:
        """Ship what is pending: every stream's, or `only` that (group, stream)'s (a task that
        ends waits for its own lines, not for every other task's). A stream's lock is held
        from taking its lines to shipping them, so its lines arrive in order."""
        with self._lock:
            keys = [only] if only is not None else list(self._pending)
        for key in keys:
            with self._stream_lock(key):
                with self._lock:
                    events = self._pending.pop(key, [])
                if not events:
                    continue
                try:
                    self._put(*key, events)
                except Exception:  # a local convenience: never let it break a task
                    self.failures += 1

    def close(self, key: tuple[str, str]) -> None:
        """The stream's task has ended: ship its last lines and forget the stream (a burst of
        thousands of tasks must not leave thousands of locks behind)."""
        self.flush(only=key)
        with self._lock:
            self._ship_locks.pop(key, None)
            self._streams.discard(key)

    def _stream_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._ship_locks.setdefault(key, threading.Lock())

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def _put(self, group: str, stream: str, events: list[dict[str, Any]]) -> None:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            client = self._client
        if (group, stream) not in self._streams:
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            self._streams.add((group, stream))
        events.sort(key=lambda e: e["timestamp"])  # PutLogEvents wants them in order
        for start in range(0, len(events), MAX_BATCH):
            client.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=events[start : start + MAX_BATCH],
            )

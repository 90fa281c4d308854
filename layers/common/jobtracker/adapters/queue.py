"""Work queues (SQS): the hand-off between on_task_state, retry_decider and launches."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from jobtracker.adapters.aws import client

MAX_DELAY_SECONDS = 900  # SQS DelaySeconds ceiling; longer waits are chained hops


@dataclass(frozen=True)
class Message:
    queue_url: str
    body: dict[str, Any]
    delay_seconds: int = 0


class WorkQueue(Protocol):
    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> None: ...


class SqsQueue:
    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> None:
        client("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(body, separators=(",", ":"), sort_keys=True),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))),
        )


@lru_cache(maxsize=1)
def default_queue() -> SqsQueue:
    return SqsQueue()

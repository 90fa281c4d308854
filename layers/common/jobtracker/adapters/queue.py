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


@dataclass(frozen=True)
class Received:
    body: str
    receipt: str


class WorkQueue(Protocol):
    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> None: ...
    def receive(self, queue_url: str, limit: int = 10) -> list[Received]: ...
    def delete(self, queue_url: str, receipt: str) -> None: ...


class SqsQueue:
    def send(self, queue_url: str, body: dict[str, Any], delay_seconds: int = 0) -> None:
        client("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(body, separators=(",", ":"), sort_keys=True),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))),
        )

    def receive(self, queue_url: str, limit: int = 10) -> list[Received]:
        got = client("sqs").receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=max(1, min(10, limit)), WaitTimeSeconds=0
        )
        return [Received(m["Body"], m["ReceiptHandle"]) for m in got.get("Messages", [])]

    def delete(self, queue_url: str, receipt: str) -> None:
        client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)


@lru_cache(maxsize=1)
def default_queue() -> SqsQueue:
    return SqsQueue()

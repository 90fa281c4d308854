"""What an SQS event source mapping does around a function: build its event from received
messages, and delete the messages it did not report failed. Used by the local stack's
dispatcher, the benchmarks' harness and the tests."""

from __future__ import annotations

from typing import Any


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """`messages` as ReceiveMessage returns them (MessageId, ReceiptHandle, Body, ...)."""
    region = queue_arn.split(":")[3]
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def succeeded(messages: list[dict[str, Any]], result: Any) -> list[dict[str, Any]]:
    """The messages a batch function's answer (ReportBatchItemFailures) did not report failed."""
    failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
    return [m for m in messages if m["MessageId"] not in failed]


def delete_messages(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    """Delete received messages in one DeleteMessageBatch (at most 10, as one receive gives)."""
    if messages:
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )

"""Build SQS → Lambda events, as an event source mapping hands received messages to a function.
Used by the local stack's dispatcher and by the tests."""

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

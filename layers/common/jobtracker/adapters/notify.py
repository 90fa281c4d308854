"""Job state change notifications, fed by the table's stream (an outbox: every committed
status change is published at least once, even when the writer crashed right after writing).

- EventBridge: source "jobtracker", detail-type "Job State Change", on the stack's bus.
- SNS: terminal states only, with message attributes `status` and `definition` for filtering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from jobtracker.adapters.aws import client
from jobtracker.adapters.queue import WorkQueue, default_queue
from jobtracker.config import get_settings
from jobtracker.core.domain import Job, JobStatus

SOURCE = "jobtracker"
DETAIL_TYPE = "Job State Change"


@dataclass(frozen=True)
class JobChange:
    job: Job
    previous: JobStatus | None

    def detail(self) -> dict[str, Any]:
        job = self.job
        attempt = job.current
        return {
            "job_id": job.job_id,
            "status": job.status.value,
            "previous_status": self.previous.value if self.previous else None,
            "definition": job.definition,
            "attempt": job.attempt,
            "status_reason": job.status_reason,
            "task_arn": attempt.task_arn,
            "schedule": job.schedule_name,
            "tags": job.spec.tags,
            "updated_at": job.updated_at,
            "finished_at": job.finished_at,
        }


def change_of(
    new: Job | None, old: Job | None, statuses: frozenset[str] | None = None
) -> JobChange | None:
    """A status change worth publishing, or None (same status, deletion, not a job, or a
    status the deployment does not publish)."""
    if new is None:
        return None
    if old is not None and old.status == new.status:
        return None
    if statuses is not None and new.status.value not in statuses:
        return None
    return JobChange(new, old.status if old else None)


class Publisher(Protocol):
    def publish(self, detail: dict[str, Any]) -> None: ...


TERMINAL = frozenset(s.value for s in JobStatus if s.terminal)


class AwsPublisher:
    def publish(self, detail: dict[str, Any]) -> None:
        """A "Job State Change" (JobChange.detail) on the bus; a terminal one on SNS too."""
        settings = get_settings()
        message = json.dumps(detail, separators=(",", ":"))
        response = client("events").put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Resources": [r for r in [detail["task_arn"]] if r],
                    "Detail": message,
                    "EventBusName": settings.event_bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents failed: {response.get('Entries')}")
        if detail["status"] in TERMINAL and settings.job_topic_arn:
            client("sns").publish(
                TopicArn=settings.job_topic_arn,
                Subject=f"jobtracker: job {detail['status']}"[:100],
                Message=message,
                MessageAttributes={
                    "status": {"DataType": "String", "StringValue": detail["status"]},
                    "definition": {"DataType": "String", "StringValue": detail["definition"]},
                },
            )


@lru_cache(maxsize=1)
def default_publisher() -> AwsPublisher:
    return AwsPublisher()


def notify_stream_record(
    record: dict[str, Any], publisher: Publisher | None = None, queue: WorkQueue | None = None
) -> str:
    """Handle one DynamoDB stream record; returns what happened.

    A change the bus or SNS refuses goes to the notify retry queue (14 days, retried there,
    then its alarmed dead-letter queue) instead of holding up the stream, whose records live
    only 24 hours: a failing consumer loses nothing."""
    from jobtracker.adapters.records import job_from_image
    from jobtracker.observability import count, logger

    ddb = record.get("dynamodb") or {}
    settings = get_settings()
    change = change_of(
        job_from_image(ddb.get("NewImage")),
        job_from_image(ddb.get("OldImage")),
        settings.notify_statuses,
    )
    if change is None:
        return "skipped"
    detail = change.detail()
    if change.job.status.terminal:
        count(f"Jobs{change.job.status.value.title().replace('_', '')}")
    try:
        (publisher or default_publisher()).publish(detail)
    except Exception:
        if not settings.notify_retry_queue_url:
            raise
        logger.exception(
            "publishing a job change failed; deferred", extra={"job_id": detail["job_id"]}
        )
        (queue or default_queue()).send(
            settings.notify_retry_queue_url, {"kind": "notify", "detail": detail}
        )
        count("NotificationsDeferred")
        return "deferred"
    return change.job.status.value


def notify_deferred(body: str, publisher: Publisher | None = None) -> str:
    """Publish a change the stream handler deferred. Raises while publishing keeps failing: SQS
    delivers it again, and after the queue's receive limit moves it to the dead-letter queue."""
    message = json.loads(body)
    detail = message.get("detail") if isinstance(message, dict) else None
    if message.get("kind") != "notify" or not isinstance(detail, dict) or "status" not in detail:
        from jobtracker.observability import count, logger

        logger.warning("malformed deferred notification dropped")
        count("NotificationsMalformed")
        return "malformed"
    (publisher or default_publisher()).publish(detail)
    return str(detail["status"])

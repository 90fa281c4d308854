"""Test helpers: call the API handlers as API Gateway would, inject AWS faults, read state."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobtracker_local.apigw import http_event
from jobtracker_local.handlers import FakeContext, load_handler
from jobtracker_local.sqs import sqs_event as lambda_sqs_event

if TYPE_CHECKING:
    from jobtracker.core.submission import Submission
    from jobtracker.wiring import Deps


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def call_api(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: str | None = None,
) -> Reply:
    from jobtracker.edge.api import route_methods
    from jobtracker.edge.routes import submissions

    # As API Gateway routes: the create_job function's routes to it, the rest to the api's.
    submitting = any(
        re.match(pattern, path) and method in methods
        for pattern, methods in route_methods([submissions]).items()
    )
    fn = load_handler(f"functions/{'create_job' if submitting else 'api'}", "app.handler")
    response = fn(http_event(method, path, body, headers, query), FakeContext())
    raw = response.get("body")
    return Reply(
        response["statusCode"], json.loads(raw) if raw else None, response.get("headers") or {}
    )


def submitted(body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST /jobs through the create_job handler; the 201 job."""
    reply = call_api("POST", "/jobs", body or {"definition": "demo"})
    assert reply.status == 201, reply.body
    return reply.body


def job_event(
    job: dict[str, Any],
    name: str,
    cluster_arn: str,
    attempt: int = 1,
    version: int | None = None,
) -> dict[str, Any]:
    """A fixture event for an attempt of a job as the API shows it (its task, once launched)."""
    task = job["attempts"][attempt - 1]["task_arn"] if len(job["attempts"]) >= attempt else None
    return ecs_event(name, job["id"], attempt, version, task, cluster_arn)


def aws_client(service: str) -> Any:
    """The botocore client the tracker calls `service` with (DynamoDB: the models' client)."""
    if service == "dynamodb":
        from jobtracker.adapters.models import bind, models_client
        from jobtracker.config import get_settings

        bind(get_settings().table_name)
        return models_client()
    from jobtracker.adapters.aws import client

    return client(service)


def inject(
    service: str, operation: str, respond: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> Callable[[], None]:
    """Make the cached boto3 client's `operation` answer with respond(params) (a parsed
    response, or {"Error": {...}} for a failure), or go through when it returns None.
    Returns a function that removes the fault."""
    events = aws_client(service).meta.events
    seen = threading.local()  # per thread: two threads' calls must not swap their parameters

    def capture(params: dict[str, Any], **_: Any) -> None:
        seen.params = params

    def before_call(**_: Any) -> Any:
        parsed = respond(getattr(seen, "params", {}))
        if parsed is None:
            return None
        status = 400 if "Error" in parsed else 200

        class _Http:
            status_code = status
            headers: dict[str, str] = {}

        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status})
        return _Http(), parsed

    name = f"{service}.{operation}"
    events.register(f"provide-client-params.{name}", capture)
    events.register(f"before-call.{name}", before_call)

    def remove() -> None:
        events.unregister(f"provide-client-params.{name}", capture)
        events.unregister(f"before-call.{name}", before_call)

    return remove


def error(code: str, message: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}}


def queue_messages(queue_url: str) -> list[dict[str, Any]]:
    import boto3

    sqs = boto3.client("sqs")
    out = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = got.get("Messages", [])
        if not batch:
            break
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out


def table_item_count(table: str) -> int:
    import boto3

    # Jobs, attempts and keys; the launch governor's one shared item is not a record of anything.
    from jobtracker.adapters.governor import KEY

    return int(
        boto3.client("dynamodb").scan(
            TableName=table,
            Select="COUNT",
            FilterExpression="pk <> :governor",
            ExpressionAttributeValues={":governor": {"S": KEY}},
        )["Count"]
    )


def ecs_task_count(cluster: str) -> int:
    import boto3

    return len(boto3.client("ecs").list_tasks(cluster=cluster)["taskArns"])


def ecs_event(
    name: str,
    job_id: str,
    attempt: int = 1,
    version: int | None = None,
    task_arn: str | None = None,
    cluster_arn: str | None = None,
) -> dict[str, Any]:
    """A fixture from tests/events/, re-addressed to one job's attempt."""
    from tests.conftest import load_event

    event = load_event(name)
    detail = event["detail"]
    detail["startedBy"] = job_id
    for override in detail.get("overrides", {}).get("containerOverrides", []):
        for var in override.get("environment", []):
            if var["name"] == "JOB_ID":
                var["value"] = job_id
            if var["name"] == "JOB_ATTEMPT":
                var["value"] = str(attempt)
    if version is not None:
        detail["version"] = version
    if task_arn is not None:
        detail["taskArn"] = task_arn
        event["resources"] = [task_arn]
        for c in detail.get("containers", []):
            c["taskArn"] = task_arn
    if cluster_arn is not None:
        detail["clusterArn"] = cluster_arn
    event["id"] = f"{event['id']}-{job_id}-{attempt}-{detail.get('version')}"
    return event


def aws_clients() -> list[Any]:
    """Every botocore client the tracker uses."""
    return [aws_client(s) for s in ("dynamodb", "ecs", "sqs", "events", "sns")]


class CallCounter:
    """Counts AWS API calls (service.Operation), e.g. to prove an event costs one write."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.slots = 0  # of those calls, the launch governor's (kept until take_slots)
        for c in aws_clients():
            c.meta.events.register("before-call", self._seen)

    def _seen(self, model: Any, params: Any = None, **_: Any) -> None:
        from jobtracker.adapters.governor import KEY

        self.calls.append(f"{model.service_model.service_name}.{model.name}")
        # before-call sees the serialized request: the governor's item is named in its body
        if isinstance(params, dict) and KEY in str(params.get("body", "")):
            self.slots += 1

    def take_slots(self) -> int:
        slots, self.slots = self.slots, 0
        return slots

    def reset(self) -> list[str]:
        calls, self.calls = self.calls, []
        return calls

    def close(self) -> None:
        for c in aws_clients():
            c.meta.events.unregister("before-call", self._seen)


def _queue_arn(queue_url: str) -> str:
    return "arn:aws:sqs:us-east-1:123456789012:" + queue_url.rsplit("/", 1)[-1]


def sqs_event(queue_url: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """An SQS → Lambda event carrying `bodies` (as the event source mapping builds it)."""
    messages = [
        {
            "MessageId": f"m-{i}",
            "ReceiptHandle": f"r-{i}",
            "Body": json.dumps(b),
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "0",
                "SenderId": "x",
                "ApproximateFirstReceiveTimestamp": "0",
            },
        }
        for i, b in enumerate(bodies)
    ]
    return lambda_sqs_event(messages, _queue_arn(queue_url))


def invoke(code_uri: str, event: dict[str, Any]) -> Any:
    return load_handler(code_uri, "app.handler")(event, FakeContext())


def drain(queue_url: str, code_uri: str = "functions/retry_decider") -> list[dict[str, Any]]:
    """Receive what is visible on a queue and hand it to the consumer as Lambda would; delete
    what succeeded. Returns the bodies handled."""
    import boto3

    sqs = boto3.client("sqs")
    handled = []
    got = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
    )
    messages = got.get("Messages", [])
    if not messages:
        return []
    event = lambda_sqs_event(messages, _queue_arn(queue_url))
    from jobtracker.edge.batch import BatchFailed

    try:
        result = invoke(code_uri, event)
    except BatchFailed:
        return []  # every record failed: Lambda fails the invocation, SQS redelivers them all
    failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
    for m in messages:
        if m["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            handled.append(json.loads(m["Body"]))
    return handled


def run_launch_queue_work(deps: Deps, queue_url: str, kinds: tuple[str, ...]) -> int:
    """Run the launch queue's messages of `kinds` (fanout, release) and its booked LAUNCHes,
    and what they send, until none is left (the others stay for their own consumers); how many
    of `kinds` ran."""
    from jobtracker.edge.work import handle_work_message

    def due(body: dict[str, Any]) -> bool:
        return body.get("kind") in kinds or bool(body.get("booked"))

    ran = 0
    while got := deps.queue.receive(queue_url, 10):
        mine = [(m, json.loads(m.body)) for m in got if due(json.loads(m.body))]
        if not mine:
            return ran
        for message, body in mine:
            handle_work_message(message.body, deps)
            deps.queue.delete(queue_url, message.receipt)
            ran += body.get("kind") in kinds
    return ran


def handed_off(body: dict[str, Any]) -> dict[str, Any]:
    """A work message without the job snapshot a decide hand-off carries (checked to be the
    job the message names)."""
    snapshot = body.get("job")
    assert snapshot is None or snapshot["pk"] == body["job_id"], "snapshot of another job"
    return {k: v for k, v in body.items() if k != "job"}


def configured_queue(monkeypatch: Any, name: str, variable: str) -> str:
    """Create an SQS queue on moto and point the deployment's `variable` at it."""
    import boto3

    from tests.conftest import reset_caches

    url = str(boto3.client("sqs").create_queue(QueueName=name)["QueueUrl"])
    monkeypatch.setenv(variable, url)
    reset_caches()
    return url


def real_deps(clock: Callable[[], Any]) -> Deps:
    """The real adapters (moto underneath) with a test's clock and no jitter."""
    from jobtracker.adapters.launcher import default_launcher
    from jobtracker.adapters.limits import DynamoRunningLimits
    from jobtracker.adapters.queue import default_queue
    from jobtracker.adapters.store import default_repository
    from jobtracker.config import get_settings
    from jobtracker.wiring import Deps

    settings = get_settings()
    return Deps(
        default_repository(),
        default_launcher(),
        default_queue(),
        settings,
        clock,
        lambda: 0.0,
        limits=DynamoRunningLimits(settings.table_name),
    )


def submission_of(body: dict[str, Any]) -> Submission:
    """A submission as POST /jobs takes it: checked by the API's own model."""
    from jobtracker.edge.api_models import JobSubmission

    return JobSubmission.model_validate(body).to_core()

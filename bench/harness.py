"""What bench/cost.py and bench/scale.py share: the real handlers on moto in-process, with the
DynamoDB meter installed, timed handler invocations, SQS queues drained as Lambda's event source
mapping would, and the table's stream handed to the notifier.

Import this module before anything from jobtracker: it sets the environment (fake credentials,
no endpoint overrides, quiet Powertools, no backoff waits).
"""

from __future__ import annotations

import gc
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.offline  # noqa: E402, F401  (the bench environment, before any AWS import)
from bench.ddb_meter import DdbMeter  # noqa: E402

ON_TASK_STATE = "functions/on_task_state"
RETRY_DECIDER = "functions/retry_decider"
NOTIFIER = "functions/notifier"
CREATE_JOB = "functions/create_job"
# No waits between attempts or launch retries, so a lifecycle runs straight through.
NO_BACKOFF = {"BACKOFF_SCALE": "0", "LAUNCH_BACKOFF_BASE_SECONDS": "0"}


# ---- template.yaml -----------------------------------------------------------------------------------


def two_parts(parser: Any) -> Any:
    """The options of a bench in two parts (metered in-process, then on the local stack),
    parsed: --skip-local, --skip-metered, and after `--` the local stack's own options."""
    import warnings

    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--skip-metered", action="store_true")
    parser.add_argument("extra", nargs="*", help="after --: the local stack's own options")
    warnings.filterwarnings("ignore")
    return parser.parse_args()


@dataclass(frozen=True)
class Intrinsic:
    """A CloudFormation intrinsic (!Ref, !GetAtt, !Sub, ...), left unresolved."""

    tag: str
    value: Any


@cache
def _template() -> dict[str, Any]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return Intrinsic(suffix, loader.construct_scalar(node))
        if isinstance(node, yaml.SequenceNode):
            return Intrinsic(suffix, loader.construct_sequence(node, deep=True))
        assert isinstance(node, yaml.MappingNode)
        return Intrinsic(suffix, loader.construct_mapping(node, deep=True))

    Loader.add_multi_constructor("!", any_tag)
    loaded: dict[str, Any] = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    return loaded


@dataclass(frozen=True)
class FunctionConfig:
    memory_mb: int
    architecture: str


def function_configs() -> dict[str, FunctionConfig]:
    """CodeUri (e.g. "functions/notifier") -> MemorySize and architecture, Globals applied."""
    template = _template()
    glob = (template.get("Globals") or {}).get("Function") or {}
    out = {}
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties") or {}
        code_uri = str(props.get("CodeUri", "")).rstrip("/")
        arch = str((props.get("Architectures") or glob.get("Architectures") or ["x86_64"])[0])
        memory = props.get("MemorySize", glob.get("MemorySize", 128))
        out[code_uri] = FunctionConfig(memory if isinstance(memory, int) else 128, arch)
    return out


def rule_patterns(code_uri: str) -> list[dict[str, Any]]:
    """The EventBridge rule patterns that invoke a function (from its EventBridgeRule events),
    without the fields whose values are intrinsics (cluster ARN, ...): those cannot be resolved
    here, and the fixture events are addressed to our cluster anyway."""

    def literal(node: Any) -> Any:
        if isinstance(node, dict):
            kept = {k: literal(v) for k, v in node.items()}
            return {k: v for k, v in kept.items() if v is not None}
        if isinstance(node, list):
            return None if any(isinstance(v, Intrinsic) for v in node) else node
        return None if isinstance(node, Intrinsic) else node

    patterns = []
    for resource in (_template().get("Resources") or {}).values():
        props = resource.get("Properties") or {}
        if str(props.get("CodeUri", "")).rstrip("/") != code_uri:
            continue
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "EventBridgeRule":
                patterns.append(literal((event.get("Properties") or {}).get("Pattern") or {}))
    return patterns


def delivered_by(patterns: list[dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
    """event -> bool: does a rule with one of these patterns deliver it (moto's matcher)."""
    if not patterns:
        return lambda event: True
    from moto.events.models import EventPattern

    matchers: list[Any] = [EventPattern(json.dumps(p), p) for p in patterns]
    return lambda event: any(m.matches_event(event) for m in matchers)


# ---- timed invocations ---------------------------------------------------------------------------


@dataclass
class Invocation:
    function: str  # CodeUri
    seconds: float  # handler wall time, the meter's own work taken out
    aws_calls: int  # AWS calls the handler made
    items: int = 1  # SQS messages or stream records handed over


@dataclass
class Harness:
    meter: DdbMeter
    notifier: bool = True
    invocations: list[Invocation] = field(default_factory=list)
    submitted_ids: list[str] = field(default_factory=list)
    filtered_events: int = 0  # ECS events the rule's pattern does not deliver

    def __post_init__(self) -> None:
        import boto3

        from tests.conftest import provision, reset_caches

        self.delivered = delivered_by(rule_patterns(ON_TASK_STATE))
        with self.meter.paused():
            self.env = provision(dict(NO_BACKOFF))
            self.sqs = boto3.client("sqs")
            self.queues = {
                url: self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                for url in (self.env.retry_queue_url, self.env.launch_queue_url)
            }
            if self.notifier:
                topic = boto3.client("sns").create_topic(Name="jobs")["TopicArn"]
                os.environ["JOB_TOPIC_ARN"] = topic
                reset_caches()
                self.stream: StreamReader | None = StreamReader(self.env.table)
            else:
                self.stream = None

    def timed(self, function: str, event: dict[str, Any], items: int = 1) -> Any:
        from tests.helpers import invoke

        return self._timed(function, items, lambda: invoke(function, event))

    def _timed(self, function: str, items: int, run: Callable[[], Any]) -> Any:
        overhead, calls = self.meter.overhead_seconds, self.meter.total_calls
        gc.disable()  # the host's collections of moto's heap are not the handler's time
        t0 = time.perf_counter()
        try:
            return run()
        finally:
            seconds = time.perf_counter() - t0 - (self.meter.overhead_seconds - overhead)
            gc.enable()
            self.invocations.append(
                Invocation(function, max(seconds, 0.0), self.meter.total_calls - calls, items)
            )

    # -- the lifecycle steps

    def submit(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST /jobs through the create_job handler (timed); the 201 job."""
        from tests.helpers import submitted

        job: dict[str, Any] = self._timed(CREATE_JOB, 1, lambda: submitted(body))
        self.submitted_ids.append(job["id"])
        return job

    def event(self, job: dict[str, Any], name: str, attempt: int = 1) -> Any:
        """A fixture ECS event of the job's attempt through on_task_state (timed), if the
        function's EventBridge rule (template.yaml) delivers it; None when it does not."""
        from tests.helpers import job_event

        event = job_event(job, name, self.env.cluster_arn, attempt)
        if not self.delivered(event):
            self.filtered_events += 1
            return None
        return self.timed(ON_TASK_STATE, event)

    def job(self, job_id: str) -> dict[str, Any]:
        """GET /jobs/{id}, not metered (the bench's own look)."""
        from tests.helpers import call_api

        with self.meter.paused():
            reply = call_api("GET", f"/jobs/{job_id}")
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body

    def drain(self, rounds: int = 20) -> int:
        """Hand what the work queues hold to retry_decider as the event source mapping does
        (ReceiveMessage, one invocation per batch, DeleteMessageBatch of what succeeded) until
        both are empty; returns the messages handled. Empty polls are not counted: Lambda's
        pollers make them whatever the load (a fixed cost)."""
        from jobtracker.edge.batch import BatchFailed
        from jobtracker_local.sqs import delete_messages, sqs_event, succeeded

        handled = 0
        for _ in range(rounds):
            progressed = False
            for url, arn in self.queues.items():
                with self.meter.paused():
                    got = self.sqs.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=10,
                        WaitTimeSeconds=0,
                        AttributeNames=["All"],
                    )
                messages = got.get("Messages", [])
                if not messages:
                    continue
                body_bytes = sum(len(m["Body"].encode()) for m in messages)
                self.meter.record_call("sqs.ReceiveMessage", max(1, math.ceil(body_bytes / 65536)))
                progressed = True
                try:
                    result = self.timed(
                        RETRY_DECIDER, sqs_event(messages, arn), items=len(messages)
                    )
                except BatchFailed:
                    continue  # all failed: SQS redelivers them after the visibility timeout
                done = succeeded(messages, result)
                delete_messages(self.sqs, url, done)
                handled += len(done)
            if not progressed:
                break
        return handled

    def notify(self) -> int:
        """New stream records through the notifier, in one (timed) invocation; returns how
        many records there were."""
        if self.stream is None:
            return 0
        with self.meter.paused():
            records = self.stream.read()
        if records:
            self.timed(NOTIFIER, {"Records": records}, items=len(records))
        return len(records)


class StreamReader:
    """Reads the table's stream (enabled with NEW_AND_OLD_IMAGES if it is not), from where the
    last read stopped. Call with the meter paused: Lambda's stream polling is free."""

    def __init__(self, table: str) -> None:
        import boto3

        ddb = boto3.client("dynamodb")
        description = ddb.describe_table(TableName=table)["Table"]
        if not (description.get("StreamSpecification") or {}).get("StreamEnabled"):
            ddb.update_table(
                TableName=table,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            description = ddb.describe_table(TableName=table)["Table"]
        self.arn: str = description["LatestStreamArn"]
        # botocore now calls <account>.streams-ddb..., an address moto does not route yet
        self.client = boto3.client(
            "dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
        )
        self.iterators: dict[str, str] = {}

    def read(self) -> list[dict[str, Any]]:
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = (
                self.iterators.get(shard_id)
                or self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            while iterator:
                got = self.client.get_records(ShardIterator=iterator)
                iterator = got.get("NextShardIterator") or iterator
                self.iterators[shard_id] = iterator
                if not got.get("Records"):
                    break
                records.extend(got["Records"])
        for r in records:
            r["eventSourceARN"] = self.arn
        return json.loads(json.dumps(records, default=_jsonable))


def _jsonable(value: Any) -> Any:
    """Stream records as Lambda hands them over (JSON: datetimes as epoch, bytes as base64)."""
    import base64
    import datetime

    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if hasattr(value, "__float__"):
        return float(value)
    raise TypeError(type(value).__name__)

"""The local stack: moto server (DynamoDB, SQS, SNS, EventBridge, logs), the local ECS service,
an HTTP front for the API functions and a dispatcher delivering rule targets, SQS event
sources, the table's stream and schedules to the same handlers — all wired from template.yaml.

Handlers run in this process, one invocation at a time (as one Lambda instance per function
would: no two invocations share Powertools' per-invocation state).
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from jobtracker_local import sigv4
from jobtracker_local import template as tpl
from jobtracker_local.apigw import LOCAL_CALLER, http_event
from jobtracker_local.docs import docs_asset
from jobtracker_local.ecs import (
    DEFAULT_LAUNCH_BURST,
    DEFAULT_LAUNCH_RATE,
    STOPPED_TASK_RETENTION_SECONDS,
    LocalEcs,
    LocalHttpServer,
    die_with_parent,
    serve,
)
from jobtracker_local.handlers import FakeContext, load_handler
from jobtracker_local.logs import LogConfiguration, LogShipper
from jobtracker_local.runtime import child_env
from jobtracker_local.schedules import ScheduleRunner, runner_for
from jobtracker_local.sigv4 import Credentials
from jobtracker_local.sqs import delete_messages, sqs_event, succeeded
from jobtracker_local.state import Journal, identity, keep_schedule_states, schedule_states

REGION = "us-east-1"
ACCOUNT = "000000000000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Route:
    method: str
    parts: list[str]
    function: str

    def match(self, method: str, path: str) -> bool:
        segs = [p for p in path.split("/") if p]
        if method != self.method or len(segs) != len(self.parts):
            return False
        return all(p.startswith("{") or p == s for p, s in zip(self.parts, segs, strict=True))


class MotoProcess:
    """moto's server in a process of its own: AWS's side of every call then runs on another
    core than the functions calling it (in one process they shared one GIL and half the
    stack's time went to moto)."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobtracker_local.moto_server", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env(),  # its malloc arenas bounded too (runtime.py)
                start_new_session=True,  # Ctrl-C reaches the stack, which stops it in order
                preexec_fn=die_with_parent,
            )
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Stats:
    invocations: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, table: dict[str, int], key: str) -> None:
        with self.lock:  # invocations run on many threads
            table[key] = table.get(key, 0) + 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {"invocations": dict(self.invocations), "errors": dict(self.errors)}


ASYNC_TRIES = 3  # Lambda's asynchronous invocation: the first try and two retries
# Instances of one function running at once: Lambda scales each function out (1,000 per account
# by default); a laptop's share is a few. ReservedConcurrentExecutions in the template caps it
# further, as on AWS; an event source's MaximumConcurrency caps its pollers.
LOCAL_CONCURRENCY = 4
PUT_EVENTS_MAX = 10  # entries in one PutEvents call
# How long a PutEvents batch waits to fill (EventBridge itself delivers in about half a second).
PUT_EVENTS_LINGER_SECONDS = 0.05
# Queue pollers long-poll as Lambda's do: an idle poller costs a request every 2 s, not ten a second.
POLL_WAIT_SECONDS = 2
# A quiet stream is read four times a second, as Lambda reads each shard of a table's stream.
STREAM_IDLE_SECONDS = 0.25
# The stream's shards are listed again this often (they change only when the table splits).
SHARDS_REFRESH_SECONDS = 10.0


# Batches read from a stream and not yet delivered to a function: past this, the reader waits
# for the function (as a Lambda event source's lag: the stream keeps the records meanwhile).
STREAM_BACKLOG_BATCHES = 20


class StreamReader:
    """A table stream's records, each batch handed in order to every consumer: an inline one
    (the journal) as it is read; a function's through a queue that its own poller drains, so a
    slow invocation never holds up the journal, and each function sees the batches in order."""

    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping
        # one look at the stream (its records to consume): whether it had any
        self.read: Callable[[], bool] = lambda: False
        self.inline_consumers: list[Callable[[list[dict[str, Any]]], None]] = []
        self.queues: list[queue.Queue[list[dict[str, Any]]]] = []

    def inline(self, consume: Callable[[list[dict[str, Any]]], None]) -> Callable[[], bool]:
        """`consume` on the reader's thread, before any function sees the batch; returns the
        reader's look (the stack's stop reads what is left with it)."""
        self.inline_consumers.append(consume)
        return self.read

    def handoff(self, deliver: Callable[[list[dict[str, Any]]], None]) -> Callable[[], bool]:
        """`deliver` on the caller's poller: returns its one step (the next batch, if any)."""
        backlog: queue.Queue[list[dict[str, Any]]] = queue.Queue(STREAM_BACKLOG_BATCHES)
        self.queues.append(backlog)

        def once() -> bool:
            try:
                records = backlog.get(timeout=0.1)
            except queue.Empty:
                return True  # it waited already
            deliver(records)
            return True

        return once

    def consume(self, records: list[dict[str, Any]]) -> None:
        for consume in list(self.inline_consumers):
            consume(records)
        for n, backlog in enumerate(list(self.queues)):
            # each function its own records (an invocation may change its event)
            batch = records if n == 0 else copy.deepcopy(records)
            while not self.stopping.is_set():  # stopping: the functions take no more
                try:
                    backlog.put(batch, timeout=0.5)
                    break
                except queue.Full:
                    continue


class LocalStack:
    def __init__(
        self,
        work_dir: Path,
        api_port: int = 0,
        backoff_scale: float = 0.05,
        quiet: bool = True,
        auth: bool = True,
        extra_env: dict[str, str] | None = None,
        step_seconds: float = 0.2,
        ecs_launch_rate: float = DEFAULT_LAUNCH_RATE,
        ecs_launch_burst: float = DEFAULT_LAUNCH_BURST,
        state_dir: Path | None = None,
        ecs_stopped_retention: float = STOPPED_TASK_RETENTION_SECONDS,
    ) -> None:
        self.work_dir = work_dir
        # Where jobs, attempts and the stack's identity outlive the process (None: nowhere).
        self.state_dir = state_dir
        self.restored: dict[str, int] = {}  # items put back per table
        self.ecs_limits = (ecs_launch_rate, ecs_launch_burst)
        self.ecs_stopped_retention = ecs_stopped_retention
        self.api_port = api_port or free_port()
        self.moto_port = free_port()
        self.backoff_scale = backoff_scale
        self.quiet = quiet
        self.auth = auth
        # The stack's token, and its own AWS key pair: the API front and the local ECS accept
        # signatures by it (and only it); the in-process functions sign with it; stack.json
        # hands it to clients. Kept in the state dir, so a restart keeps its clients working.
        if state_dir is not None:
            self.token, self.credentials = identity(state_dir, lambda: secrets.token_urlsafe(18))
        else:
            self.token, self.credentials = secrets.token_urlsafe(18), Credentials.generate()
        self.extra_env = extra_env or {}
        self.step_seconds = step_seconds
        self.template = tpl.load()
        # Quiet, each function runs up to its concurrency at once (moto answers from its own
        # process, so they overlap on its round trips). Verbose, one invocation at a time in
        # the whole stack: the functions share one Powertools logger and metrics object in
        # this process, whose per-invocation keys and flushes must not interleave.
        self.serial = threading.Lock() if not quiet else None
        # Powertools' HTTP resolver keeps the request in hand on its base class (BaseRouter), not
        # on the instance: in one process, the API's functions take requests one at a time
        # (seen: a POST answered 422 "body: field required" with another request's event).
        self.http_serial = threading.Lock()
        # Per function, its idle instances (an instance runs one invocation at a time).
        self.instances: dict[str, queue.Queue[int]] = {}
        self.ecs_events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.journals: list[tuple[Journal, Callable[[], bool]]] = []
        self.streams: dict[str, StreamReader] = {}  # by stream ARN: its one reader
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stats = Stats()
        self.functions: dict[str, tpl.Function] = {}
        self.routes: list[Route] = []
        self.queue_urls: dict[str, str] = {}  # by ARN, for the event source mappings
        self.schedules: list[ScheduleRunner] = []
        self.schedule_states = schedule_states(state_dir)  # by name, as last seen

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.moto = MotoProcess(self.moto_port, self.work_dir / "moto.log").start()
        self._wait_port(self.moto_port)
        self.shipper = LogShipper(lambda: self._boto("logs"))
        self.shipper.start()
        self.ecs = LocalEcs(
            self._emit_ecs_event,
            REGION,
            self.work_dir,
            self.step_seconds,
            *self.ecs_limits,
            shipper=self.shipper,
            stopped_retention=self.ecs_stopped_retention,
            zygote=True,  # the worker's tasks forked from one import of it (zygote.py)
        )
        self.ecs_server = serve(self.ecs, self.credentials.secret_for, self.token)
        self.ecs_port = self.ecs_server.server_address[1]
        self._environment()
        self.sqs_client = self._boto("sqs")
        self.events_client = self._boto("events")
        self._create_resources()
        self._wire_functions()
        self._function_logs()
        self._poll("ecs-events", self._forward_ecs_events)
        self._start_front()

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop in dependency order: no new requests, pollers finish the delivery in hand (ECS
        and moto still answer it), then task processes die, then the servers close."""
        self.stop_event.set()
        self._close(self.front)
        deadline = time.monotonic() + grace_seconds  # one budget for all, not one per thread
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if stuck:
            print(f"still busy after {grace_seconds:.0f}s, abandoned: {', '.join(stuck)}")
        self.ecs.shutdown()
        for journal, read in self.journals:
            with contextlib.suppress(Exception):
                while read():  # what the last invocations wrote, before moto goes
                    pass
            journal.close()
        self.shipper.stop()
        self._close(self.ecs_server)
        self.moto.stop()

    @staticmethod
    def _close(server: Any) -> None:
        server.shutdown()
        server.server_close()  # a listening socket left open accepts calls nobody answers

    @staticmethod
    def _wait_port(port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout  # moto's server imports for seconds on a busy machine
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listening on {port}")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    # ---- environment and resources ------------------------------------------------------------

    def _environment(self) -> None:
        os.environ.update(
            AWS_ACCESS_KEY_ID=self.credentials.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.credentials.secret_access_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.moto_port}",
            AWS_ENDPOINT_URL_ECS=f"http://127.0.0.1:{self.ecs_port}",
            POWERTOOLS_METRICS_DISABLED="true" if self.quiet else "false",
            POWERTOOLS_LOG_LEVEL="WARNING" if self.quiet else "INFO",
        )
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_SESSION_TOKEN", None)  # long-term keys: a token would be foreign

    def _boto(self, service: str) -> Any:
        import boto3

        return boto3.session.Session().client(service, region_name=REGION)

    def _create_queue(self, name: str, attributes: dict[str, str]) -> tuple[str, str]:
        url = self.sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        got = self.sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, got["Attributes"]["QueueArn"]

    def _create_resources(self) -> None:
        t = self.template
        stack = "jobtracker-local"
        r = tpl.Resolver(
            t,
            pseudo={
                "AWS::StackName": stack,
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
        )
        r.refs.update(r.parameter_defaults())
        r.refs.update(
            Subnets=["subnet-local"],
            SecurityGroups=["sg-local"],
            BackoffScale=str(self.backoff_scale),
            DemoScheduleState="ENABLED",
        )
        self.resolver = r
        ddb, sns = self._boto("dynamodb"), self._boto("sns")
        queues = tpl.resources_of_type(t, "AWS::SQS::Queue")
        # dead-letter queues first: the others point at them
        for logical in sorted(
            queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})
        ):
            props = queues[logical].get("Properties", {})
            attrs: dict[str, str] = {"VisibilityTimeout": "5"}
            if "RedrivePolicy" in props:
                redrive = r.resolve(props["RedrivePolicy"])
                attrs["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": redrive["deadLetterTargetArn"],
                        "maxReceiveCount": str(redrive["maxReceiveCount"]),
                    }
                )
            url, arn = self._create_queue(f"{stack}-{logical}", attrs)
            r.refs[logical] = url
            r.attrs[(logical, "Arn")] = arn
            r.attrs[(logical, "QueueName")] = f"{stack}-{logical}"
            self.queue_urls[arn] = url
        for logical, res in tpl.resources_of_type(t, "AWS::DynamoDB::Table").items():
            props = res["Properties"]
            name = f"{stack}-{logical}"
            ddb.create_table(
                TableName=name,
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
                StreamSpecification={
                    "StreamEnabled": True,
                    "StreamViewType": props["StreamSpecification"]["StreamViewType"],
                },
            )
            desc = ddb.describe_table(TableName=name)["Table"]
            r.refs[logical] = name
            r.attrs[(logical, "Arn")] = desc["TableArn"]
            r.attrs[(logical, "StreamArn")] = desc["LatestStreamArn"]
            if self.state_dir is not None:
                keys = [k["AttributeName"] for k in props["KeySchema"]]
                self._keep(logical, name, keys, desc["LatestStreamArn"], ddb)
        for logical, res in tpl.resources_of_type(t, "AWS::Events::EventBus").items():
            name = r.resolve(res["Properties"]["Name"])
            arn = self.events_client.create_event_bus(Name=name)["EventBusArn"]
            r.refs[logical], r.attrs[(logical, "Arn")] = name, arn
        for logical in tpl.resources_of_type(t, "AWS::SNS::Topic"):
            arn = sns.create_topic(Name=f"{stack}-{logical}")["TopicArn"]
            r.refs[logical], r.attrs[(logical, "TopicName")] = arn, f"{stack}-{logical}"
        logs = self._boto("logs")
        # EventBridge Scheduler's side is moto's (the API reads the schedules there, as on
        # AWS); the stack itself fires them on time (moto's scheduler invokes nothing).
        self.scheduler_client = self._boto("scheduler")
        for logical, res in tpl.resources_of_type(t, "AWS::Scheduler::ScheduleGroup").items():
            name = r.resolve(res["Properties"]["Name"])
            arn = self.scheduler_client.create_schedule_group(Name=name)["ScheduleGroupArn"]
            r.refs[logical], r.attrs[(logical, "Arn")] = name, arn
        for logical, res in tpl.resources_of_type(t, "AWS::Logs::LogGroup").items():
            r.refs[logical] = r.resolve(res["Properties"]["LogGroupName"])
            logs.create_log_group(logGroupName=r.refs[logical])
        for logical, res in tpl.resources_of_type(t, "AWS::ECS::Cluster").items():
            name = r.resolve(res["Properties"]["ClusterName"])
            r.refs[logical] = name
            r.attrs[(logical, "Arn")] = self.ecs.create_cluster(name)
        for logical in tpl.resources_of_type(t, "AWS::IAM::Role"):
            r.attrs[(logical, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{stack}-{logical}"
        for logical, res in tpl.resources_of_type(t, "AWS::ECS::TaskDefinition").items():
            props = res["Properties"]
            c = props["ContainerDefinitions"][0]
            env = {e["Name"]: str(r.resolve(e["Value"])) for e in c.get("Environment", [])}
            arn = self.ecs.register_task_definition(
                family=r.resolve(props["Family"]),
                container=c["Name"],
                command=["python", "-m", "jobtracker_worker.main"],
                environment=env,
                stop_timeout=float(r.resolve(c.get("StopTimeout", 30))),
                logs=self._awslogs(r.resolve(c.get("LogConfiguration", {}))),
            )
            r.refs[logical] = arn
        for logical in tpl.resources_of_type(t, "AWS::Serverless::LayerVersion"):
            r.refs[logical] = "local-layer"
        for logical in tpl.resources_of_type(t, "AWS::Serverless::HttpApi"):
            r.refs[logical] = "local-api"

    def _function_logs(self) -> None:
        """Quiet, what the functions log (Powertools' JSON lines, Python's warnings) goes to
        functions.log in the work dir, as it would go to CloudWatch on AWS, and the console
        keeps the stack's own story; verbose, it all stays on the console."""
        self.functions_log = self.work_dir / "functions.log"
        if not self.quiet:
            return
        import logging

        from jobtracker.observability import logger

        out = self.functions_log.open("a", buffering=1, encoding="utf-8")
        handler = logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(out)
        logging.captureWarnings(True)
        warnings_logger = logging.getLogger("py.warnings")
        warnings_logger.addHandler(logging.StreamHandler(out))
        warnings_logger.propagate = False

    def _keep(self, logical: str, table: str, keys: list[str], stream_arn: str, ddb: Any) -> None:
        """Put the table's kept items back, then journal every write from now on."""
        assert self.state_dir is not None
        journal = Journal(self.state_dir / f"{logical}.jsonl", keys)
        self.restored[logical] = journal.restore(ddb, table)
        # Read from now on: what the journal put back is not news to it, nor to the functions.
        read = self._stream(stream_arn).inline(journal.append)
        self.journals.append((journal, read))

    @staticmethod
    def _awslogs(config: dict[str, Any]) -> LogConfiguration | None:
        options = config.get("Options", {})
        if config.get("LogDriver") != "awslogs" or "awslogs-group" not in options:
            return None
        return LogConfiguration(options["awslogs-group"], options.get("awslogs-stream-prefix", ""))

    # ---- functions and their events -----------------------------------------------------------

    def _wire_functions(self) -> None:
        self.functions = tpl.functions(self.template, self.resolver)
        env: dict[str, str] = {}
        for fn in self.functions.values():
            env.update(fn.environment)
        env.update(self.extra_env)
        os.environ.update(env)  # every function shares the Globals environment
        from jobtracker.wiring import reset_defaults

        reset_defaults()
        for name in self.functions:
            self.instances[name] = queue.Queue()
            for n in range(self.concurrency(name)):
                self.instances[name].put(n)
        for name, fn in self.functions.items():
            for event_name, event in fn.events.items():
                props = event.get("Properties", {})
                if event["Type"] == "HttpApi":
                    parts = [p for p in props["Path"].split("/") if p]
                    self.routes.append(Route(props["Method"].upper(), parts, name))
                elif event["Type"] == "EventBridgeRule":
                    # moto matches the rule's pattern and delivers to a queue we drain.
                    pattern = self.resolver.resolve(props["Pattern"])
                    url, arn = self._create_queue(
                        f"jobtracker-local-rule-{name}-{event_name}", {"VisibilityTimeout": "5"}
                    )
                    rule = f"{name}-{event_name}"
                    self.events_client.put_rule(Name=rule, EventPattern=json.dumps(pattern))
                    self.events_client.put_targets(Rule=rule, Targets=[{"Id": "local", "Arn": arn}])
                    self._poll(
                        f"rule:{rule}",
                        partial(self._drain_rule_queue, url, name),
                        self.concurrency(name),
                    )
                elif event["Type"] in ("ScheduleV2", "Schedule"):
                    resolved = self.resolver.resolve(props)
                    label = str(resolved.get("Name") or f"{name}-{event_name}")
                    if event["Type"] == "ScheduleV2":
                        self._create_schedule(label, name, resolved)
                    runner = runner_for(
                        label, name, resolved, datetime.now(UTC), event["Type"] == "ScheduleV2"
                    )
                    if runner is not None:
                        self.schedules.append(runner)
        if self.schedules:
            # Scheduler's times are to the minute: a look a second is on time.
            self._poll("schedules", self._fire_schedules, idle=1.0)
        for logical, res in tpl.resources_of_type(
            self.template, "AWS::Lambda::EventSourceMapping"
        ).items():
            props = res["Properties"]
            function = props["FunctionName"]["Ref"]
            source = self.resolver.resolve(props["EventSourceArn"])
            if ":sqs:" in source:
                url = self.queue_urls[source]
                size = int(props.get("BatchSize", 10))
                cap = props.get("ScalingConfig", {}).get("MaximumConcurrency")
                pollers = min(self.concurrency(function), int(cap or LOCAL_CONCURRENCY))
                self._poll(
                    f"sqs:{logical}",
                    partial(self._drain_sqs, url, source, function, size),
                    pollers,
                )
            elif ":dynamodb:" in source:
                self._poll(
                    f"stream:{logical}",
                    self._stream(source).handoff(self._stream_delivery(source, function)),
                )

    def _create_schedule(self, name: str, function: str, props: dict[str, Any]) -> None:
        """The schedule as SAM's ScheduleV2 creates it in EventBridge Scheduler."""
        target: dict[str, Any] = {
            "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}",
            # SAM makes a role for a ScheduleV2 event that names none
            "RoleArn": props.get("RoleArn")
            or f"arn:aws:iam::{ACCOUNT}:role/jobtracker-local-{function}-schedules",
        }
        if props.get("Input"):
            target["Input"] = props["Input"]
        optional = {
            "GroupName": props.get("GroupName"),
            "Description": props.get("Description"),
            "ScheduleExpressionTimezone": props.get("ScheduleExpressionTimezone"),
        }
        self.scheduler_client.create_schedule(
            Name=name,
            ScheduleExpression=props["ScheduleExpression"],
            # paused or resumed through the API before a restart: as it was left
            State=self.schedule_states.get(name) or str(props.get("State", "ENABLED")),
            FlexibleTimeWindow=props.get("FlexibleTimeWindow") or {"Mode": "OFF"},
            Target=target,
            **{k: v for k, v in optional.items() if v},
        )

    def concurrency(self, function: str) -> int:
        if self.serial is not None:
            return 1
        reserved = self.functions[function].reserved_concurrency
        return min(LOCAL_CONCURRENCY, reserved) if reserved else LOCAL_CONCURRENCY

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "stats": self.stats.snapshot(),
            "schedules": [
                {
                    "name": r.name,
                    "function": r.function,
                    "expression": r.schedule.expression,
                    "next_at": r.next_at.isoformat() if r.next_at else None,
                    "fired": [t.isoformat() for t in r.fired],
                }
                for r in self.schedules
            ],
        }

    def _fire_schedules(self) -> bool:
        fired = False
        for runner in list(self.schedules):
            if runner.group is not None:
                try:
                    state = self._schedule_state(runner)
                except self.scheduler_client.exceptions.ResourceNotFoundException:
                    self.schedules.remove(runner)  # deleted in Scheduler: it fires no more
                    continue
                except Exception:  # one schedule's trouble holds up no other (as on AWS)
                    if not self.quiet:
                        traceback.print_exc()
                    continue  # its times stay due: fired on a later look
                if state == "DISABLED":
                    runner.due(datetime.now(UTC))  # paused: its times pass unfired
                    continue
            for when in runner.due(datetime.now(UTC)):
                fired = True
                # the schedule's retry policy, shortened
                self._invoke_retrying(runner.function, runner.payload(when), 3, 0.5)
        return fired

    def _schedule_state(self, runner: ScheduleRunner) -> str:
        """The schedule's state in moto's Scheduler (the API pauses and resumes it there),
        kept in the state directory when it changes, for the next start."""
        got = self.scheduler_client.get_schedule(Name=runner.name, GroupName=runner.group)
        state = str(got.get("State") or "ENABLED")
        if self.schedule_states.get(runner.name) != state:
            self.schedule_states[runner.name] = state
            keep_schedule_states(self.state_dir, self.schedule_states)
        return state

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        fn = self.functions[function]
        http = any(e.get("Type") == "HttpApi" for e in fn.events.values())
        with (
            self.serial or contextlib.nullcontext(),
            self.http_serial if http else contextlib.nullcontext(),
        ):
            instance = self.instances[function].get()  # waits for an idle one
            try:
                handler = load_handler(fn.code_uri, fn.handler, instance)
                self.stats.add(self.stats.invocations, function)
                return handler(event, FakeContext(function))
            except Exception:
                self.stats.add(self.stats.errors, function)
                if not self.quiet:
                    traceback.print_exc()
                raise
            finally:
                self.instances[function].put(instance)

    def _invoke_retrying(
        self, function: str, event: dict[str, Any], tries: int, pause: float
    ) -> None:
        """An asynchronous invocation: retried a few times, then handed to the function's
        on-failure destination (as Lambda does), or given up on where it has none."""
        error = "no attempt"
        for _ in range(tries):
            try:
                self.invoke(function, event)
                return
            except Exception as exc:
                error = repr(exc)
                time.sleep(pause)
        self._dead_letter(function, event, error)

    def _dead_letter(self, function: str, event: dict[str, Any], error: str) -> None:
        """What Lambda sends an on-failure destination once an asynchronous invocation's retries
        are spent: the event itself under `requestPayload`."""
        destination = self.functions[function].on_failure
        if destination is None or destination not in self.queue_urls:
            return
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{REGION}:000000000000:function:{function}",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": ASYNC_TRIES,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": error[:1000]},
        }
        self.sqs_client.send_message(
            QueueUrl=self.queue_urls[destination], MessageBody=json.dumps(record)
        )
        self.stats.add(self.stats.errors, f"{function}:dead-lettered")

    def _poll(
        self, name: str, once: Callable[[], bool], pollers: int = 1, idle: float = 0.1
    ) -> None:
        """`pollers` threads calling `once` while it finds work, waiting `idle` s when not."""

        def loop() -> None:
            while not self.stop_event.is_set():
                try:
                    busy = once()
                except Exception:
                    busy = False
                    if not self.quiet:
                        traceback.print_exc()
                if not busy:
                    self.stop_event.wait(idle)

        for n in range(pollers):
            thread = threading.Thread(target=loop, name=f"{name}#{n}", daemon=True)
            self.threads.append(thread)
            thread.start()

    def _drain_rule_queue(self, url: str, function: str) -> bool:
        sqs = self.sqs_client  # botocore clients are safe to share between threads
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=POLL_WAIT_SECONDS,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = got.get("Messages", [])
        done = []
        for m in messages:
            event = json.loads(m["Body"])
            try:
                self.invoke(function, event)
            except Exception as exc:
                # EventBridge hands the event to Lambda asynchronously: Lambda tries it
                # ASYNC_TRIES times, then sends it to the function's on-failure destination.
                if int(m["Attributes"].get("ApproximateReceiveCount", "1")) < ASYNC_TRIES:
                    continue  # the message comes back after its visibility timeout
                self._dead_letter(function, event, repr(exc))
            done.append(m)
        delete_messages(sqs, url, done)
        return bool(messages)

    def _drain_sqs(self, url: str, arn: str, function: str, batch: int) -> bool:
        sqs = self.sqs_client  # botocore clients are safe to share between threads
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(batch, 10),
            WaitTimeSeconds=POLL_WAIT_SECONDS,
            AttributeNames=["All"],
        )
        messages = got.get("Messages", [])
        if not messages:
            return False
        try:
            result = self.invoke(function, sqs_event(messages, arn))
        except Exception:
            return True  # all failed: SQS redelivers them after the visibility timeout
        delete_messages(sqs, url, succeeded(messages, result))
        return True

    def _stream(self, stream_arn: str) -> StreamReader:
        """The one reader of a table's stream (made, and polled, on first use): the journal and
        every function reading the stream take its records from it, so each record is fetched
        and parsed once, not once per reader."""
        reader = self.streams.get(stream_arn)
        if reader is None:
            reader = self.streams[stream_arn] = StreamReader(self.stop_event)
            reader.read = self._stream_reader(stream_arn, reader.consume)
            table = stream_arn.rsplit("/", 3)[-3]
            self._poll(f"stream-reader:{table}", reader.read, idle=STREAM_IDLE_SECONDS)
        return reader

    def _stream_delivery(
        self, stream_arn: str, function: str
    ) -> Callable[[list[dict[str, Any]]], None]:
        def deliver(records: list[dict[str, Any]]) -> None:
            for rec in records:
                rec["eventSourceARN"] = stream_arn
            # a failing batch is retried, then skipped (to the DLQ on AWS)
            self._invoke_retrying(function, {"Records": records}, 3, 0.2)

        return deliver

    def _stream_reader(
        self, stream_arn: str, consume: Callable[[list[dict[str, Any]]], None]
    ) -> Callable[[], bool]:
        """Reads the stream from now on (what a restored state put back is not news), handing
        each batch of records to `consume`, in order."""
        streams = self._boto("dynamodbstreams")

        def iterator(shard: str, kind: str) -> str | None:
            return streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard, ShardIteratorType=kind
            )["ShardIterator"]

        listed: list[Any] = [0.0, []]  # when, which

        def shards() -> list[str]:
            if time.monotonic() - listed[0] > SHARDS_REFRESH_SECONDS:
                described = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
                listed[:] = [time.monotonic(), [shard["ShardId"] for shard in described["Shards"]]]
            return list(listed[1])

        # Made now, not on the first read: nothing written after this moment may be skipped.
        iterators: dict[str, str | None] = {sid: iterator(sid, "LATEST") for sid in shards()}

        def once() -> bool:
            busy = False
            for sid in shards():
                if sid not in iterators:  # a shard that came later: all of it is new
                    iterators[sid] = iterator(sid, "TRIM_HORIZON")
                it = iterators[sid]
                if it is None:
                    continue
                got = streams.get_records(ShardIterator=it, Limit=100)
                records = got.get("Records", [])
                if records:
                    consume(records)
                    busy = True
                iterators[sid] = got.get("NextShardIterator")
            return busy

        return once

    # ---- ECS events -> EventBridge ---------------------------------------------------------------

    def _emit_ecs_event(self, event: dict[str, Any]) -> None:
        self.ecs_events.put(
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Resources": event["resources"],
                "Detail": json.dumps(event["detail"]),
            }
        )

    def _forward_ecs_events(self) -> bool:
        """ECS's events to the bus in PutEvents batches of up to 10 (one call each was the
        largest share of moto's requests under a burst), in the order they happened. A batch
        waits up to PUT_EVENTS_LINGER_SECONDS for more events (under a burst a call carried
        two or three of them, most of a task's eight events in calls of their own)."""
        try:
            entries = [self.ecs_events.get(timeout=0.1)]
        except queue.Empty:
            return True  # it waited already
        until = time.monotonic() + PUT_EVENTS_LINGER_SECONDS
        while len(entries) < PUT_EVENTS_MAX:
            try:
                entries.append(self.ecs_events.get(timeout=max(0.0, until - time.monotonic())))
            except queue.Empty:
                break
        while not self.stop_event.is_set():  # an event ECS emitted is never dropped
            try:
                failed = self.events_client.put_events(Entries=entries)["FailedEntryCount"]
            except Exception:
                failed = len(entries)
                if not self.quiet:
                    traceback.print_exc()
            if not failed:
                break
            time.sleep(0.2)
        return True

    # ---- HTTP front ------------------------------------------------------------------------------

    def authorize(self, request: sigv4.Request) -> sigv4.Accepted | sigv4.Rejected | None:
        """API Gateway's IAM authorization on every route: a SigV4 signature (service
        execute-api) by the stack's key. The bearer token is accepted too, for curl (None: the
        local user, no key); with auth off, everything is."""
        presented = next((v for k, v in request.headers if k.lower() == "authorization"), "")
        if not self.auth:
            return None
        if presented.startswith("Bearer "):
            if hmac.compare_digest(presented.encode(), f"Bearer {self.token}".encode()):
                return None
            return sigv4.Rejected(sigv4.Reason.UNKNOWN_KEY, "Forbidden")
        return sigv4.verify(request, self.credentials.secret_for, "execute-api", REGION)

    def _start_front(self) -> None:
        stack = self

        class Front(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has the headers, never the body
                    self.wfile.write(body)

            def _handle(self) -> None:
                path, _, query = self.path.partition("?")
                raw_length = self.headers.get("Content-Length") or "0"
                if not raw_length.isdigit():
                    self.close_connection = True  # the body's end is unknown: no keep-alive
                    return self._send(
                        400,
                        json.dumps(
                            {
                                "error": {
                                    "code": "bad_request",
                                    "message": "Content-Length must be a whole number",
                                    "fields": [{"field": "Content-Length", "message": raw_length}],
                                }
                            }
                        ).encode(),
                        {"Content-Type": "application/json"},
                    )
                length = int(raw_length)
                body = self.rfile.read(length) if length else None
                if path == "/_local/health":
                    return self._send(
                        200,
                        json.dumps(stack.health()).encode(),
                        {"Content-Type": "application/json"},
                    )
                doc = docs_asset(path) if self.command == "GET" else None
                if doc is not None:  # documentation, no job data: served without a signature
                    return self._send(200, doc[0], {"Content-Type": doc[1]})
                signed = sigv4.Request(self.command, path, query, self.headers.items(), body or b"")
                caller = stack.authorize(signed)
                if isinstance(caller, sigv4.Rejected):
                    return self._send(
                        403,
                        json.dumps({"message": caller.message}).encode(),
                        {"Content-Type": "application/json"},
                    )
                route = next((r for r in stack.routes if r.match(self.command, path)), None)
                if route is None:
                    # API Gateway sends unknown routes nowhere; the API function answers 404/405.
                    route = next((r for r in stack.routes if r.function == "ApiFunction"), None)
                assert route is not None
                event = http_event(
                    self.command,
                    path,
                    body,
                    dict(self.headers.items()),
                    query,
                    caller=LOCAL_CALLER,
                    access_key=caller.access_key if caller else None,
                )
                try:
                    result = stack.invoke(route.function, event)
                except Exception:
                    return self._send(
                        500,
                        b'{"message":"Internal Server Error"}',
                        {"Content-Type": "application/json"},
                    )
                data = (result.get("body") or "").encode()
                headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
                self._send(int(result["statusCode"]), data, headers)

            def __getattr__(self, name: str) -> Any:
                # Every method, HEAD, OPTIONS, TRACE and made-up ones too, goes where API Gateway
                # sends it: a route, or the API function's 404/405 (never http.server's 501).
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

        server = LocalHttpServer(("127.0.0.1", self.api_port), Front)
        self.front = server
        thread = threading.Thread(target=server.serve_forever, name="api-front", daemon=True)
        self.threads.append(thread)
        thread.start()

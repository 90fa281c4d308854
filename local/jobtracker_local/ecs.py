"""A local ECS service speaking the ECS JSON protocol (what boto3 sends with
AWS_ENDPOINT_URL_ECS): RunTask (count, clientToken semantics), StopTask, DescribeTasks, ListTasks
(filters, paging), ListClusters, DescribeClusters, answering what ECS answers: epoch timestamps,
ClusterNotFoundException for an unknown cluster, InvalidParameterException for values ECS refuses.

Each task's container runs as a local process with the task definition's and the overrides'
environment; its output is the task's log, shipped to CloudWatch Logs (moto) under the names the
awslogs driver uses when the task definition has a log configuration. Every change of a task is emitted as a real-shaped
"ECS Task State Change" event (increasing detail.version, ISO timestamps, stopCode,
stoppedReason, container exit codes) through the given `emit` callback.

Every ECS call must be SigV4-signed (service `ecs`) with the stack's credentials, as on AWS.
Faults can be injected (POST /_faults, with the stack's bearer token) so retry paths can be seen locally: RunTask capacity
failures, throttling, and start failures (CannotPullContainerError, ResourceInitializationError).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import parse_qs

from jobtracker.core.domain import ECS_PRE_RUNNING
from jobtracker_local.logs import LogConfiguration, LogShipper, now_ms
from jobtracker_local.sigv4 import Accepted, Reason, Request, verify
from jobtracker_local.zygote import PR_SET_PDEATHSIG, Forked, Zygote, load_prctl

ACCOUNT = "000000000000"
WORKER_PATH = Path(__file__).resolve().parents[2] / "worker"  # the image's one package
PREFIX = "AmazonEC2ContainerServiceV20141113."
START_FAILURES = {
    "pull": (
        "TaskFailedToStart",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref: dial tcp 10.0.0.1:443: i/o timeout",
    ),
    "resource_init": (
        "TaskFailedToStart",
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: i/o timeout",
    ),
    "image_not_found": (
        "TaskFailedToStart",
        "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref worker:missing: not found",
    ),
}
RUN_FAILURES = {
    "capacity": "Capacity is unavailable at this time. Please try again later or in a different availability zone",
    "resource_memory": "RESOURCE:MEMORY",
}


# Resolved in the parent: after fork, in a threaded process, the child must not import.
_PRCTL = load_prctl()


def die_with_parent() -> None:
    """In the task process, before exec: be killed if the stack dies, even by SIGKILL, so a
    crashed stack leaves no orphan task behind (Linux; elsewhere Ctrl-C still cleans up)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


# The worker's own command: what the zygote can run without a new interpreter.
WORKER_COMMAND = ["python", "-m", "jobtracker_worker.main"]
TaskProcess: TypeAlias = subprocess.Popen[bytes] | Forked


def _kill_group(proc: TaskProcess) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def now_iso() -> str:
    t = datetime.now(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class EcsError(Exception):
    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}


@dataclass
class TaskDefinition:
    arn: str
    family: str
    container: str
    command: list[str]
    environment: dict[str, str]
    stop_timeout: float
    logs: LogConfiguration | None = None


@dataclass(slots=True)
class Task:
    arn: str
    cluster_arn: str
    task_definition: TaskDefinition
    overrides: dict[str, Any]
    started_by: str | None
    group: str | None
    tags: list[dict[str, str]]
    client_token: str | None
    params_hash: str
    seq: int = 0  # creation order: what ListTasks pages by
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    version: int = 1  # as on ECS: the task RunTask answers is version 1; every change adds one
    changed: int = 0  # the local ECS's count of changes at this task's last one (/_tasks?after=)
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    started_at: str | None = None
    stopping_at: str | None = None
    stopped_at: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    container_reason: str | None = None
    process: TaskProcess | None = None
    log_path: Path | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # A stopped task's overrides, as JSON (compact): kept for ECS's hour, rarely described.
    frozen_overrides: bytes | None = None

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def shown_overrides(self) -> dict[str, Any]:
        live = self.overrides  # read first: compact() freezes them before it lets them go
        frozen = self.frozen_overrides
        return live if frozen is None else dict(json.loads(frozen))

    def compact(self) -> None:
        """Stopped for good: keep less of it for the hour ECS describes it (its overrides, half
        of what a stopped task held, as JSON; its log file's path, its process: nothing)."""
        self.frozen_overrides = json.dumps(self.overrides, separators=(",", ":")).encode()
        self.overrides = {}
        self.log_path = None


@dataclass
class Faults:
    """Failures to inject, each (kind, match): `match` (optional) must occur in the task's
    JOB_PARAMETERS, so a fault can be aimed at one job."""

    run_task: list[tuple[str, str | None]] = field(default_factory=list)
    start: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_faults: {"run_task": [kind, ...], "start": [kind, ...], "match": "..."}."""
        match = body.get("match")
        with self.lock:
            self.run_task += [(kind, match) for kind in body.get("run_task", [])]
            self.start += [(kind, match) for kind in body.get("start", [])]
            return {"run_task": list(self.run_task), "start": list(self.start)}

    def take(self, queue: list[tuple[str, str | None]], parameters: str) -> str | None:
        with self.lock:
            for i, (kind, match) in enumerate(queue):
                if match is None or match in parameters:
                    del queue[i]
                    return kind
        return None


def job_parameters(overrides: dict[str, Any]) -> str:
    for override in overrides.get("containerOverrides") or []:
        for var in override.get("environment") or []:
            if var.get("name") == "JOB_PARAMETERS":
                return str(var.get("value", ""))
    return ""


class TokenBucket:
    """ECS's rate limits: `rate` tokens a second, at most `burst` saved up."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.at = clock()
        self.lock = threading.Lock()

    def take(self, n: int = 1) -> bool:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens < n:
                return False
            self.tokens -= n
            return True


MAX_RUN_COUNT = 10  # tasks one RunTask call may start
MAX_PAGE = 100  # ECS's most items per call: tasks described, results listed
DESIRED_STATUSES = ("RUNNING", "PENDING", "STOPPED")
# ListTasks filters that ECS refuses alongside startedBy ("cannot specify startedBy with other
# arguments"); desiredStatus is not among them: scripts filter startedBy by it.
NOT_WITH_STARTED_BY = ("family", "containerInstance", "serviceName", "launchType")


def _page(operation: str, items: list[tuple[int, str]], body: dict[str, Any]) -> dict[str, Any]:
    """One page of `items` ((order, value), ascending) as ECS pages a listing: at most
    `maxResults` (1-100, default 100), then an opaque `nextToken` while more are left. The token
    holds the last order given, so items added or dropped between calls move no other item."""
    size = body.get("maxResults")
    if size is None:
        size = MAX_PAGE
    elif isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE:
        raise EcsError("InvalidParameterException", "maxResults must be between 1 and 100.")
    after = 0
    if body.get("nextToken"):
        try:
            token = json.loads(base64.urlsafe_b64decode(str(body["nextToken"]).encode()))
            if token["op"] != operation:
                raise ValueError(token["op"])
            after = int(token["after"])
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise EcsError("InvalidParameterException", "Invalid nextToken.") from None
    rest = [(order, value) for order, value in items if order > after]
    page: dict[str, Any] = {"values": [value for _, value in rest[:size]]}
    if len(rest) > size:
        marker = {"op": operation, "after": rest[size - 1][0]}
        page["nextToken"] = base64.urlsafe_b64encode(json.dumps(marker).encode()).decode()
    return page


# Fargate, per account and region: RunTask calls and task launches, 20 a second, bursts of 100.
DEFAULT_LAUNCH_RATE = 20.0
DEFAULT_LAUNCH_BURST = 100.0
# ECS shows a stopped task for at least an hour, then forgets it: so does the local ECS, which
# keeps a long-running stack's memory bounded.
STOPPED_TASK_RETENTION_SECONDS = 3600.0


class LocalEcs:
    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        region: str,
        work_dir: Path,
        step_seconds: float = 0.2,
        launch_rate: float = DEFAULT_LAUNCH_RATE,
        launch_burst: float = DEFAULT_LAUNCH_BURST,
        shipper: LogShipper | None = None,
        stopped_retention: float = STOPPED_TASK_RETENTION_SECONDS,
        zygote: bool = False,
    ) -> None:
        self.emit = emit
        # Tasks of the worker's own command forked from a pre-imported worker (zygote.py), when
        # asked: started here, on the thread that makes the ECS, which outlives its tasks.
        self.zygote = Zygote(WORKER_PATH, die_with_parent) if zygote else None
        self.stopped_retention = stopped_retention
        self.stopped: deque[tuple[float, str]] = deque()  # (when it stopped, arn), oldest first
        self.shipper = shipper
        self.region = region
        self.work_dir = work_dir
        self.step = step_seconds
        self.clusters: dict[str, str] = {}  # name -> arn
        self.task_definitions: dict[str, TaskDefinition] = {}  # arn and family -> def
        self.tasks: dict[str, Task] = {}
        self.task_count = 0  # tasks ever created: the next one's `seq`
        self.tokens: dict[tuple[str, str], list[str]] = {}  # (cluster, clientToken) -> tasks
        self.faults = Faults()
        self.lock = threading.Lock()
        self.closed = threading.Event()  # set by shutdown: no new task, no more events
        self.run_task_calls: dict[str, int] = {}
        # As on ECS: every RunTask call takes from one bucket, every task launched from another.
        self.call_bucket = TokenBucket(launch_rate, launch_burst)
        self.launch_bucket = TokenBucket(launch_rate, launch_burst)
        self.throttled = 0
        self.change_count = 0  # changes of tasks so far (a new task is one)
        self.change_lock = threading.Lock()

    # ---- setup (from the template) -----------------------------------------------------------

    def _cluster_arn(self, name: str) -> str:
        return f"arn:aws:ecs:{self.region}:{ACCOUNT}:cluster/{name}"

    def create_cluster(self, name: str) -> str:
        arn = self._cluster_arn(name)
        self.clusters[name] = arn
        return arn

    def register_task_definition(
        self,
        family: str,
        container: str,
        command: list[str],
        environment: dict[str, str],
        stop_timeout: float,
        logs: LogConfiguration | None = None,
    ) -> str:
        arn = f"arn:aws:ecs:{self.region}:{ACCOUNT}:task-definition/{family}:1"
        td = TaskDefinition(arn, family, container, command, environment, stop_timeout, logs)
        self.task_definitions[arn] = td
        self.task_definitions[family] = td
        self.task_definitions[f"{family}:1"] = td
        return arn

    def _cluster(self, value: str | None) -> str:
        """The ARN of the cluster a call names, by short name or ARN ("default" when it names
        none, as on ECS); an unknown one fails the call."""
        given = value or "default"
        arn = given if given.startswith("arn:") else self.clusters.get(given)
        if arn is None or arn not in self.clusters.values():
            raise EcsError("ClusterNotFoundException", "Cluster not found.")
        return arn

    def _task_arn(self, cluster: str, ref: str) -> str:
        """A task reference (ID or ARN) as an ARN; an ID is taken as one of `cluster`."""
        if ref.startswith("arn:"):
            return ref
        return f"arn:aws:ecs:{self.region}:{ACCOUNT}:task/{cluster.rsplit('/', 1)[-1]}/{ref}"

    def _task_in(self, cluster: str, ref: str) -> Task | None:
        """The task `ref` names if it is one of `cluster`: ECS does not find another cluster's."""
        task = self.tasks.get(self._task_arn(cluster, ref))
        return task if task is not None and task.cluster_arn == cluster else None

    # ---- API ----------------------------------------------------------------------------------

    def dispatch(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "RunTask": self.run_task,
            "StopTask": self.stop_task,
            "DescribeTasks": self.describe_tasks,
            "ListTasks": self.list_tasks,
            "ListClusters": self.list_clusters,
            "DescribeClusters": self.describe_clusters,
        }.get(action)
        if handler is None:
            raise EcsError("InvalidParameterException", f"{action} is not supported locally")
        return handler(body)

    def run_task(self, body: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(body.get("cluster"))
        count = body.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RUN_COUNT:
            raise EcsError("InvalidParameterException", "count must be between 1 and 10.")
        td = self.task_definitions.get(str(body.get("taskDefinition")))
        if td is None:
            raise EcsError("InvalidParameterException", "TaskDefinition not found.")
        if self.closed.is_set():
            raise EcsError("ServerException", "The local ECS service is shutting down.")
        if not self.call_bucket.take():
            self.throttled += 1
            raise EcsError("ThrottlingException", "Rate exceeded")
        self._forget_stopped()
        token = body.get("clientToken")
        relevant = {k: v for k, v in body.items() if k != "clientToken"}
        relevant["count"] = count  # count=1 and no count are the same request
        params_hash = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
        with self.lock:
            if token:
                self.run_task_calls[token] = self.run_task_calls.get(token, 0) + 1
                existing = [self.tasks[arn] for arn in self.tokens.get((cluster, token), [])]
                if existing:
                    if existing[0].params_hash != params_hash:
                        raise EcsError(
                            "ConflictException",
                            "The specified client token has already been used with other parameters.",
                            {"resourceIds": [t.arn for t in existing]},
                        )
                    return {
                        "tasks": [self.describe(t, epoch=True) for t in existing],
                        "failures": [],
                    }
            fault = self.faults.take(
                self.faults.run_task, job_parameters(body.get("overrides") or {})
            )
            if fault == "throttle":
                raise EcsError("ThrottlingException", "Rate exceeded")
            if fault is not None:
                return {
                    "tasks": [],
                    "failures": [{"arn": td.arn, "reason": RUN_FAILURES.get(fault, fault)}],
                }
            # Each task launched takes a launch token. Short of `count` tokens, the whole call is
            # throttled and nothing starts: ECS refuses a call past its launch rate with
            # ThrottlingException, and all-or-nothing keeps a clientToken's retry simple.
            if not self.launch_bucket.take(count):
                self.throttled += 1
                raise EcsError("ThrottlingException", "Rate exceeded")
            tasks = []
            for _ in range(count):
                self.task_count += 1
                task = Task(
                    arn=self._task_arn(cluster, uuid.uuid4().hex),
                    cluster_arn=cluster,
                    task_definition=td,
                    overrides=body.get("overrides") or {},
                    started_by=body.get("startedBy"),
                    group=body.get("group"),
                    tags=body.get("tags") or [],
                    client_token=token,
                    params_hash=params_hash,
                    seq=self.task_count,
                )
                self._count_change(task)
                self.tasks[task.arn] = task
                tasks.append(task)
            if token:
                self.tokens[(cluster, token)] = [t.arn for t in tasks]
        answers = []
        for task in tasks:
            answers.append(self.describe(task, epoch=True))
            provisioning = self.describe(task)  # version 1, told as the task's first event
            threading.Thread(
                target=self._run,
                args=(task, provisioning),
                name=f"task-{task.task_id[:8]}",
                daemon=True,
            ).start()
        return {"tasks": answers, "failures": []}

    def stop_task(self, body: dict[str, Any]) -> dict[str, Any]:
        task = self._task_in(self._cluster(body.get("cluster")), str(body.get("task") or ""))
        if task is None:
            raise EcsError("InvalidParameterException", "The referenced task was not found.")
        with task.lock:
            if task.last_status == "STOPPED" or task.stop_requested.is_set():
                return {"task": self.describe(task, epoch=True)}
            task.stop_requested.set()
            task.desired_status = "STOPPED"
            task.stopped_reason = body.get("reason") or "Task stopped by user"
            task.stop_code = "UserInitiated"
            task.stopping_at = now_iso()
            proc = task.process
        answer = self._change(task, answer=True)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            timer = threading.Timer(task.task_definition.stop_timeout, _kill_group, args=(proc,))
            timer.daemon = True
            timer.start()
        return {"task": answer}

    def describe_tasks(self, body: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(body.get("cluster"))
        refs = [str(ref) for ref in body.get("tasks") or []]
        if not refs:
            raise EcsError("InvalidParameterException", "Tasks cannot be empty.")
        if len(refs) > MAX_PAGE:
            raise EcsError("InvalidParameterException", "Tasks cannot have more than 100 elements")
        tasks, failures = [], []
        include_tags = "TAGS" in (body.get("include") or [])
        for ref in refs:
            task = self._task_in(cluster, ref)
            if task is None:
                failures.append({"arn": self._task_arn(cluster, ref), "reason": "MISSING"})
            else:
                tasks.append(self.describe(task, epoch=True, tags=include_tags))
        return {"tasks": tasks, "failures": failures}

    def list_tasks(self, body: dict[str, Any]) -> dict[str, Any]:
        cluster = self._cluster(body.get("cluster"))
        desired = body.get("desiredStatus") or "RUNNING"  # ECS's default: not the stopped ones
        if desired not in DESIRED_STATUSES:
            raise EcsError(
                "InvalidParameterException", f"Invalid desiredStatus: {body['desiredStatus']}"
            )
        started_by, family = body.get("startedBy"), body.get("family")
        if started_by and any(body.get(name) for name in NOT_WITH_STARTED_BY):
            raise EcsError(
                "InvalidParameterException", "cannot specify startedBy with other arguments"
            )
        # PENDING is a valid filter that matches nothing: ECS never sets desiredStatus to it.
        matching = [
            (t.seq, t.arn)
            for t in list(self.tasks.values())
            if t.cluster_arn == cluster
            and t.desired_status == desired
            and (not started_by or t.started_by == started_by)
            and (not family or t.task_definition.family == family)
        ]
        page = _page("ListTasks", sorted(matching), body)
        answer: dict[str, Any] = {"taskArns": page["values"]}
        if "nextToken" in page:
            answer["nextToken"] = page["nextToken"]
        return answer

    def list_clusters(self, body: dict[str, Any]) -> dict[str, Any]:
        arns = list(self.clusters.values())  # in creation order: clusters are never deleted
        page = _page("ListClusters", list(enumerate(arns, start=1)), body)
        answer: dict[str, Any] = {"clusterArns": page["values"]}
        if "nextToken" in page:
            answer["nextToken"] = page["nextToken"]
        return answer

    def describe_clusters(self, body: dict[str, Any]) -> dict[str, Any]:
        refs = [str(ref) for ref in body.get("clusters") or ["default"]]
        if len(refs) > MAX_PAGE:
            raise EcsError(
                "InvalidParameterException", "Clusters cannot have more than 100 elements"
            )
        clusters, failures = [], []
        for ref in refs:
            try:
                arn = self._cluster(ref)
            except EcsError:
                # ECS names a missing cluster by ARN even when asked by name.
                arn = ref if ref.startswith("arn:") else self._cluster_arn(ref)
                failures.append({"arn": arn, "reason": "MISSING"})
                continue
            statuses = [t.last_status for t in list(self.tasks.values()) if t.cluster_arn == arn]
            clusters.append(
                {
                    "clusterArn": arn,
                    "clusterName": arn.rsplit("/", 1)[-1],
                    "status": "ACTIVE",
                    "registeredContainerInstancesCount": 0,  # Fargate: no instances
                    "runningTasksCount": statuses.count("RUNNING"),
                    "pendingTasksCount": sum(s in ECS_PRE_RUNNING for s in statuses),
                    "activeServicesCount": 0,
                    "statistics": [],
                    "tags": [],
                    "settings": [],
                    "capacityProviders": [],
                    "defaultCapacityProviderStrategy": [],
                }
            )
        return {"clusters": clusters, "failures": failures}

    # ---- the task's life ----------------------------------------------------------------------

    def _env(self, task: Task) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JOB_"))}
        env.update(task.task_definition.environment)
        env["JOB_CHECKPOINT_DIR"] = str(self.work_dir / "checkpoints")
        env["PYTHONPATH"] = str(WORKER_PATH)
        for override in task.overrides.get("containerOverrides") or []:
            if override.get("name") in (None, task.task_definition.container):
                for var in override.get("environment") or []:
                    env[var["name"]] = var["value"]
        return env

    def _command(self, task: Task) -> list[str]:
        for override in task.overrides.get("containerOverrides") or []:
            if override.get("command"):
                return list(override["command"])
        return list(task.task_definition.command)

    def _run(self, task: Task, provisioning: dict[str, Any]) -> None:
        self._emit(task, provisioning)
        for status in ("PENDING", "ACTIVATING"):
            time.sleep(self.step)
            if task.stop_requested.is_set():
                return self._finish(task, None, None)
            self._set(task, status)
        start_fault = self.faults.take(self.faults.start, job_parameters(task.overrides))
        if start_fault is not None:
            stop_code, reason = START_FAILURES.get(start_fault, ("TaskFailedToStart", start_fault))
            with task.lock:
                task.stop_code, task.stopped_reason = stop_code, reason
                task.container_reason = reason
            return self._finish(task, None, None)
        logs = self.work_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        task.log_path = logs / f"{task.task_id}.log"
        command = self._command(task)
        with task.log_path.open("wb") as out:
            try:
                proc = self._start(command, self._env(task))
            except (OSError, ValueError, TypeError) as exc:
                # As ECS does for a container it cannot start: the task stops, with the reason
                # (ValueError: an argument or variable the OS cannot carry, e.g. a NUL byte).
                with task.lock:
                    task.stop_code = "TaskFailedToStart"
                    task.stopped_reason = f"CannotStartContainerError: {exc}"
                return self._finish(task, None, None)
            with task.lock:
                task.process = proc
                task.started_at = now_iso()
                stop_now = task.stop_requested.is_set()
            if self.closed.is_set():  # shutdown ran before it could see this process
                _kill_group(proc)
            elif stop_now:
                proc.send_signal(signal.SIGTERM)
            self._set(task, "RUNNING")
            self._copy_output(task, proc, out)
            code = proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()  # else a stopped task keeps its pipe open until forgotten
        self._finish(task, code, None)

    def _start(self, command: list[str], env: dict[str, str]) -> TaskProcess:
        """The task's process: forked by the zygote when it runs the worker's own command with
        an environment it can take (else Popen, which raises what the OS says, as before)."""
        if command == WORKER_COMMAND and self.zygote is not None and Zygote.takes(env):
            return self.zygote.spawn(env)
        if command and command[0] == "python":
            # The local "image": this interpreter with the worker on its path and nothing else
            # of this machine's (-S: no site-packages, as in the slim image; and the task
            # starts in two thirds of the time, which a burst of thousands feels).
            command = [sys.executable, "-S", *command[1:]]
        return subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def _copy_output(self, task: Task, proc: subprocess.Popen[bytes], out: Any) -> None:
        """The container's output, line by line, to its file and (as awslogs would) its stream."""
        logs = task.task_definition.logs
        shipper = self.shipper if logs is not None else None
        stream = logs.stream_for(task.task_definition.container, task.task_id) if logs else ""
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            if shipper is not None and logs is not None:
                shipper.line(logs.group, stream, line, now_ms())
        if shipper is not None and logs is not None:
            # in CloudWatch before STOPPED is told: a follower sees it all
            shipper.close((logs.group, stream))

    def _finish(self, task: Task, exit_code: int | None, reason: str | None) -> None:
        with task.lock:
            if exit_code is not None and exit_code < 0:
                exit_code = 128 + (-exit_code)  # killed by a signal: shell convention
            task.exit_code = exit_code
            if task.stop_code is None:
                task.stop_code = "EssentialContainerExited"
                task.stopped_reason = "Essential container in task exited"
            task.desired_status = "STOPPED"
            task.stopping_at = task.stopping_at or now_iso()
        for status in ("DEACTIVATING", "STOPPING", "DEPROVISIONING"):
            self._set(task, status)
        with task.lock:
            task.stopped_at = now_iso()
            task.process = None  # exited and waited for: nothing to signal, nothing to keep
        self._set(task, "STOPPED")
        with task.lock:
            task.compact()
        with self.lock:
            self.stopped.append((time.monotonic(), task.arn))

    def _forget_stopped(self) -> None:
        """Drop the tasks stopped longer ago than the retention (and their client tokens)."""
        horizon = time.monotonic() - self.stopped_retention
        with self.lock:
            while self.stopped and self.stopped[0][0] <= horizon:
                _, arn = self.stopped.popleft()
                task = self.tasks.pop(arn, None)
                if task is not None and task.client_token:
                    key = (task.cluster_arn, task.client_token)
                    if arn in self.tokens.get(key, []):
                        del self.tokens[key]
                        self.run_task_calls.pop(task.client_token, None)

    def _set(self, task: Task, status: str) -> None:
        with task.lock:
            task.last_status = status
        self._change(task)

    def _change(self, task: Task, answer: bool = False) -> dict[str, Any] | None:
        """One change of the task: a new version, told as an event. With `answer`, returns the
        task as an API answer shows it at this change (StopTask's answer is its own change, not
        a later one)."""
        with task.lock:
            task.version += 1
            task.updated_at = now_iso()
            self._count_change(task)
            detail = self.describe(task)
            shown = self.describe(task, epoch=True) if answer else None
        self._emit(task, detail)
        return shown

    def _count_change(self, task: Task) -> None:
        """Number the task's change (its state already set, under its lock): /_tasks?after=N
        lists the tasks changed since the N-th change."""
        with self.change_lock:
            self.change_count += 1
            task.changed = self.change_count

    def changed_since(self, after: int) -> tuple[int, list[dict[str, Any]]]:
        """The count of changes so far, and every task changed after the `after`-th change, as
        it is now (events' shape). Counted first: a change numbered later is in the next look."""
        with self.change_lock:
            upto = self.change_count
        shown = []
        for task in list(self.tasks.values()):  # a copy: RunTask adds tasks meanwhile
            if task.changed > after:
                with task.lock:
                    shown.append(self.describe(task))
        return upto, shown

    def _emit(self, task: Task, detail: dict[str, Any]) -> None:
        if self.closed.is_set():
            return  # the event bus is going away with the stack
        self.emit(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "ECS Task State Change",
                "source": "aws.ecs",
                "account": ACCOUNT,
                "time": now_iso(),
                "region": self.region,
                "resources": [task.arn],
                "detail": detail,
            }
        )

    def describe(self, task: Task, epoch: bool = False, tags: bool = False) -> dict[str, Any]:
        """The task as ECS shows it: `epoch` for API answers (epoch seconds, which boto3 turns into
        datetimes), ISO strings for events; `tags` only when DescribeTasks asks for them."""

        def ts(value: str | None) -> Any:
            if value is None or not epoch:
                return value
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

        container: dict[str, Any] = {
            "containerArn": f"arn:aws:ecs:{self.region}:{ACCOUNT}:container/{task.task_id}/{task.task_definition.container}",
            "name": task.task_definition.container,
            "lastStatus": {"PROVISIONING": "PENDING", "ACTIVATING": "PENDING"}.get(
                task.last_status, task.last_status
            ),
            "taskArn": task.arn,
            "image": "jobtracker-worker:local",
        }
        if task.last_status == "STOPPED":
            if task.exit_code is not None:
                container["exitCode"] = task.exit_code
            if task.container_reason:
                container["reason"] = task.container_reason
        detail: dict[str, Any] = {
            "taskArn": task.arn,
            "clusterArn": task.cluster_arn,
            "taskDefinitionArn": task.task_definition.arn,
            "lastStatus": task.last_status,
            "desiredStatus": task.desired_status,
            "launchType": "FARGATE",
            "capacityProviderName": "FARGATE",
            "platformVersion": "1.4.0",
            "cpu": "256",
            "memory": "512",
            "availabilityZone": f"{self.region}a",
            "createdAt": ts(task.created_at),
            "updatedAt": ts(task.updated_at),
            "version": task.version,
            "containers": [container],
            "overrides": task.shown_overrides(),
            "attachments": [],
        }
        if tags:
            detail["tags"] = task.tags
        for key, value in (
            ("startedBy", task.started_by),
            ("group", task.group),
            ("startedAt", ts(task.started_at)),
            ("stoppingAt", ts(task.stopping_at)),
            ("stoppedAt", ts(task.stopped_at)),
            ("stopCode", task.stop_code if task.desired_status == "STOPPED" else None),
            ("stoppedReason", task.stopped_reason if task.desired_status == "STOPPED" else None),
        ):
            if value is not None:
                detail[key] = value
        return detail

    # ---- shutdown ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        self.closed.set()
        for task in list(self.tasks.values()):
            with task.lock:  # pairs with _run: either we see its process or it sees `closed`
                proc = task.process
            if proc is not None:
                _kill_group(proc)
        if self.zygote is not None:
            self.zygote.stop()


class LocalHttpServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog (5) resets bursts of clients
    daemon_threads = True


# How ECS answers a request it cannot authenticate: (HTTP status, error type).
AUTH_ERRORS: dict[Reason, tuple[int, str]] = {
    Reason.MISSING: (403, "MissingAuthenticationTokenException"),
    Reason.INCOMPLETE: (400, "IncompleteSignatureException"),
    Reason.UNKNOWN_KEY: (400, "UnrecognizedClientException"),
    Reason.WRONG_SCOPE: (400, "InvalidSignatureException"),
    Reason.EXPIRED: (400, "InvalidSignatureException"),
    Reason.MISMATCH: (400, "InvalidSignatureException"),
}


def serve(
    ecs: LocalEcs,
    secret_for: Callable[[str], str | None],
    helper_token: str,
    host: str = "127.0.0.1",
    port: int = 0,
) -> ThreadingHTTPServer:
    """The ECS API on `host:port`, for requests SigV4-signed (service `ecs`) by a key
    `secret_for` knows; the test helpers (/_tasks, /_faults) for `Bearer <helper_token>`."""

    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as ECS's endpoint does: a RunTask then costs no TCP connect and no new
        # thread here (every answer has its Content-Length). An idle connection's thread ends
        # after `timeout`; botocore reconnects.
        protocol_version = "HTTP/1.1"
        timeout = 120

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            # Every AWS answer carries one; boto3 shows it as ResponseMetadata.RequestId.
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if status >= 400 and "__type" in payload:
                self.send_header("x-amzn-ErrorType", payload["__type"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _helper_allowed(self) -> bool:
            """The helpers are not ECS: they take the stack's bearer token, as its API front does
            for curl (they reveal every task's environment and can make launches fail)."""
            presented = (self.headers.get("Authorization") or "").encode()
            if hmac.compare_digest(presented, f"Bearer {helper_token}".encode()):
                return True
            self._reply(403, {"message": "Forbidden"})
            return False

        def _signed_by_a_known_key(self, raw: bytes) -> bool:
            path, _, query = self.path.partition("?")
            request = Request(self.command, path, query, self.headers.items(), raw)
            result = verify(request, secret_for, "ecs", ecs.region)
            if isinstance(result, Accepted):
                return True
            status, error_type = AUTH_ERRORS[result.reason]
            self._reply(status, {"__type": error_type, "message": result.message})
            return False

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.rstrip("/") == "/_faults":
                if not self._helper_allowed():
                    return None
            elif not self._signed_by_a_known_key(raw):
                return None
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                return self._reply(400, {"__type": "SerializationException", "message": "bad JSON"})
            if self.path.rstrip("/") == "/_faults":
                return self._reply(200, ecs.faults.add(body))
            target = self.headers.get("X-Amz-Target", "")
            if not target.startswith(PREFIX):
                return self._reply(400, {"__type": "UnknownOperationException", "message": target})
            try:
                return self._reply(200, ecs.dispatch(target[len(PREFIX) :], body))
            except EcsError as exc:
                status = (
                    500 if exc.code == "ServerException" else 400
                )  # ECS's fault, not the caller's
                return self._reply(
                    status, {"__type": exc.code, "message": exc.message, **exc.extra}
                )

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            if path.rstrip("/") == "/_tasks":
                if not self._helper_allowed():
                    return None
                # ?after=N: only the tasks changed since `changes` was N (a watcher's next look)
                after = parse_qs(query).get("after", ["-1"])[0]
                if not after.lstrip("-").isdigit():
                    return self._reply(400, {"message": "after must be a whole number"})
                changes, tasks = ecs.changed_since(int(after))
                with ecs.lock:  # RunTask counts calls on other threads meanwhile
                    calls = dict(ecs.run_task_calls)
                return self._reply(
                    200,
                    {
                        "tasks": tasks,
                        "changes": changes,
                        "run_task_calls": calls,
                        "throttled": ecs.throttled,
                    },
                )
            return self._reply(404, {"message": "not found"})

    server = LocalHttpServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="local-ecs", daemon=True).start()
    return server

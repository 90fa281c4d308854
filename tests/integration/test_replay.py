"""Replay: hundreds of jobs through the real handlers on moto, with every ECS event duplicated,
shuffled and partly dropped, and crashes injected after random AWS calls (then redelivered).
Afterwards the invariants of design.md are checked for every job.

ECS here keeps RunTask's clientToken promise (moto does not): the same token returns the same
task, so "at most one task per attempt" is measured as distinct tasks per (job, attempt).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from jobtracker_local.apigw import http_event
from jobtracker_local.handlers import FakeContext, load_handler
from tests.conftest import AwsEnv, load_event
from tests.helpers import aws_clients, drain, ecs_event, invoke

JOBS = int(os.environ.get("REPLAY_JOBS", "70"))  # per seed: 210 jobs in all
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Scenario:
    stops: tuple[str, ...]  # the STOPPED fixture of each attempt, in order
    final: str
    launch_failures: int = 0


SCENARIOS = {
    "success": Scenario(("task_stopped_success",), "SUCCEEDED"),
    "retry_then_success": Scenario(("task_stopped_exit_2", "task_stopped_success"), "SUCCEEDED"),
    "fatal_exit": Scenario(("task_stopped_exit_1",), "FAILED"),
    "oom": Scenario(("task_stopped_oom",), "FAILED"),
    "no_exit_code": Scenario(("task_stopped_no_exit_code",), "FAILED"),
    "image_pull_retried": Scenario(
        ("task_stopped_image_pull_timeout", "task_stopped_success"), "SUCCEEDED"
    ),
    "capacity_at_launch": Scenario(("task_stopped_success",), "SUCCEEDED", launch_failures=2),
    "spot_then_success": Scenario(("task_stopped_spot", "task_stopped_success"), "SUCCEEDED"),
    "exhausted": Scenario(("task_stopped_exit_2",) * MAX_ATTEMPTS, "FAILED"),
}
NOT_STARTED = {"task_stopped_image_pull_timeout"}
CRASHABLE = {
    "dynamodb.UpdateItem",
    "dynamodb.PutItem",
    "dynamodb.TransactWriteItems",
    "dynamodb.GetItem",
    "sqs.SendMessage",
    "ecs.RunTask",
    "ecs.StopTask",
}


class Crash(Exception):
    """A Lambda dying between two AWS calls (the call it just made took effect)."""


@dataclass
class World:
    """ECS with clientToken semantics, the scenario of every job, and fault injection."""

    aws: AwsEnv
    rng: random.Random
    crash_rate: float
    scenario_of: dict[str, str] = field(default_factory=dict)
    task_by_token: dict[str, str] = field(default_factory=dict)
    run_calls: Counter[str] = field(default_factory=Counter)
    launch_failures_left: dict[str, int] = field(default_factory=dict)
    new_tasks: list[tuple[str, int, str]] = field(default_factory=list)
    delivered_versions: dict[tuple[str, int], set[int]] = field(
        default_factory=lambda: defaultdict(set)
    )
    crashes: Counter[str] = field(default_factory=Counter)
    deliveries: int = 0  # on_task_state invocations, redeliveries included
    # UpdateItems by item ("job", "governor", "slots") and how many of each were refused
    writes: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    _writing: str = "job"
    armed: bool = False
    _token: str | None = None

    def install(self) -> None:
        for c in aws_clients():
            c.meta.events.register("after-call", self._maybe_crash)
        aws_clients()[0].meta.events.register("before-call.dynamodb.UpdateItem", self._updating)
        ecs = aws_clients()[1]
        ecs.meta.events.register("provide-client-params.ecs.RunTask", self._remember_token)
        ecs.meta.events.register("before-call.ecs.RunTask", self._run_task_before)
        ecs.meta.events.register("after-call.ecs.RunTask", self._run_task_after)

    def _remember_token(self, params: dict[str, Any], **_: Any) -> None:
        self._token = params["clientToken"]
        self.run_calls[self._token] += 1
        job_id = params["startedBy"]
        if job_id not in self.scenario_of:
            # The job carries its scenario in its parameters (JOB_PARAMETERS override).
            env = {
                e["name"]: e["value"]
                for e in params["overrides"]["containerOverrides"][0]["environment"]
            }
            scenario = json.loads(env["JOB_PARAMETERS"])["scenario"]
            self.scenario_of[job_id] = scenario
            self.launch_failures_left[job_id] = SCENARIOS[scenario].launch_failures

    def _job_and_attempt(self, token: str) -> tuple[str, int]:
        job_id, attempt = token.rsplit("-a", 1)
        return job_id, int(attempt)

    def _run_task_before(self, **_: Any) -> Any:
        token = self._token
        assert token is not None
        job_id, _attempt = self._job_and_attempt(token)
        if token in self.task_by_token:
            # Real ECS: same token + same parameters → the original task, nothing new.
            return _Http(200), {"tasks": [{"taskArn": self.task_by_token[token]}], "failures": []}
        if self.launch_failures_left.get(job_id, 0) > 0:
            self.launch_failures_left[job_id] -= 1
            return _Http(200), {
                "tasks": [],
                "failures": [{"arn": "x", "reason": "Capacity is unavailable at this time."}],
            }
        return None

    def _run_task_after(self, parsed: dict[str, Any], **_: Any) -> None:
        token = self._token
        tasks = parsed.get("tasks") or []
        if token and tasks and token not in self.task_by_token:
            self.task_by_token[token] = tasks[0]["taskArn"]
            job_id, attempt = self._job_and_attempt(token)
            self.new_tasks.append((job_id, attempt, tasks[0]["taskArn"]))

    def _updating(self, params: Any = None, **_: Any) -> None:
        from jobtracker.adapters.governor import KEY
        from jobtracker.adapters.limits import key

        body = str((params or {}).get("body", ""))  # the serialized request names its item
        self._writing = "governor" if KEY in body else "slots" if key("") in body else "job"

    def _maybe_crash(self, model: Any, parsed: Any = None, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        if name == "dynamodb.UpdateItem":
            self.writes[self._writing] += 1
            code = (parsed or {}).get("Error", {}).get("Code")
            self.refused[self._writing] += code == "ConditionalCheckFailedException"
        if self.armed and name in CRASHABLE and self.rng.random() < self.crash_rate:
            self.crashes[name] += 1
            raise Crash(name)

    def events_for(self, job_id: str, attempt: int, task_arn: str) -> list[dict[str, Any]]:
        stops = SCENARIOS[self.scenario_of[job_id]].stops
        stop = stops[min(attempt, len(stops)) - 1]
        names = ["task_pending"]
        if stop not in NOT_STARTED:
            names.append("task_running")
        if stop == "task_stopped_spot":
            names.append("spot_interruption_notice")
        names.append(stop)
        events = []
        for version, name in enumerate(names, start=2):
            events.append(ecs_event(name, job_id, attempt, version, task_arn, self.aws.cluster_arn))
        return events


class _Http:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}


def submit(world: World, scenario: str, index: int) -> str:
    fn = load_handler("functions/create_job", "app.handler")
    body = {
        "definition": "demo",
        "parameters": {"scenario": scenario, "n": index},
        "retry": {"max_attempts": MAX_ATTEMPTS, "backoff": {"base_seconds": 0}},
    }
    key = f"replay-{index}"
    for _ in range(50):  # a client retries a failed POST with the same Idempotency-Key
        try:
            reply = fn(http_event("POST", "/jobs", body, {"Idempotency-Key": key}), FakeContext())
        except Crash:
            continue
        if reply["statusCode"] in (200, 201, 202):
            return str(json.loads(reply["body"])["id"])
    raise AssertionError("submission never succeeded")


def deliver(world: World, event: dict[str, Any]) -> bool:
    world.deliveries += 1
    if world.armed and world.rng.random() < world.crash_rate:
        # on_task_state raises before doing anything (a bad deploy, a timeout at init)
        world.crashes["on_task_state"] += 1
        return False  # Lambda's retries, then the dead-letter queue and its redrive: again
    try:
        invoke("functions/on_task_state", event)
        return True
    except Crash:
        return False  # EventBridge retries the target


def run_world(aws: AwsEnv, seed: int, jobs: int, crash_rate: float) -> tuple[World, list[str]]:
    rng = random.Random(seed)
    world = World(aws, rng, crash_rate)
    world.install()
    sqs = boto3.client("sqs")
    for url in (aws.retry_queue_url, aws.launch_queue_url):
        # Visible again at once after a failed batch item: redelivery without waiting.
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})
    names = sorted(SCENARIOS)
    job_ids: list[str] = []
    pending: list[dict[str, Any]] = []
    world.armed = True
    for i in range(jobs):
        job_ids.append(submit(world, names[i % len(names)], i))
        if i % 25 == 0:  # foreign and malformed events mixed into the stream
            pending += [load_event("foreign_service_task"), load_event("malformed_no_version")]
    for _round in range(400):
        while world.new_tasks:
            job_id, attempt, arn = world.new_tasks.pop()
            for event in world.events_for(job_id, attempt, arn):
                is_stop = event["detail"]["lastStatus"] == "STOPPED"
                if not is_stop and rng.random() < 0.15:
                    continue  # a partial stream: some non-terminal events never arrive
                copies = 2 if rng.random() < 0.5 else 1
                pending += [json.loads(json.dumps(event)) for _ in range(copies)]
        rng.shuffle(pending)
        batch, pending = pending[:40], pending[40:]
        for event in batch:
            if deliver(world, event):
                detail = event.get("detail")
                if isinstance(detail, dict) and "version" in detail:
                    env = {
                        v["name"]: v["value"]
                        for o in detail["overrides"]["containerOverrides"]
                        for v in o.get("environment", [])
                    }
                    if "JOB_ID" in env:
                        world.delivered_versions[(env["JOB_ID"], int(env["JOB_ATTEMPT"]))].add(
                            detail["version"]
                        )
            else:
                pending.append(event)
        for url in (aws.retry_queue_url, aws.launch_queue_url):
            for _ in range(5):
                if not drain(url):
                    break
        world.armed = False  # the harness's own reads never crash
        done = (
            not pending
            and not world.new_tasks
            and _queues_empty(sqs, aws)
            and _all_terminal(job_ids)
        )
        world.armed = True
        if done:
            break
    world.armed = False
    return world, job_ids


def _queues_empty(sqs: Any, aws: AwsEnv) -> bool:
    for url in (aws.retry_queue_url, aws.launch_queue_url):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        if int(attrs["ApproximateNumberOfMessages"]) or int(
            attrs["ApproximateNumberOfMessagesDelayed"]
        ):
            return False
    return True


def _all_terminal(job_ids: list[str]) -> bool:
    from jobtracker.adapters.store import default_repository

    repo = default_repository()
    return all((job := repo.get(j, full=True)) is not None and job.status.terminal for j in job_ids)


@pytest.mark.parametrize(("seed", "crash_rate"), [(1, 0.0), (2, 0.04), (3, 0.08)])
def test_replayed_duplicated_shuffled_crashing_streams_keep_every_invariant(
    aws: AwsEnv, seed: int, crash_rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_caches

    # Launch retries without waiting (configuration: moto delays SQS messages in real time).
    monkeypatch.setenv("LAUNCH_BACKOFF_BASE_SECONDS", "0")
    reset_caches()
    world, job_ids = run_world(aws, seed, JOBS, crash_rate)
    from jobtracker.adapters.store import default_repository

    repo = default_repository()
    if crash_rate:
        assert sum(world.crashes.values()) > 0  # the faults really happened
    for job_id in job_ids:
        job = repo.get(job_id, full=True)
        assert job is not None
        scenario = SCENARIOS[world.scenario_of[job_id]]
        where = f"{job_id} ({world.scenario_of[job_id]})"
        # 1. no lost job: exactly one terminal state, the right one
        assert job.status.value == scenario.final, where
        # 4. attempts never exceed the policy; the expected number were made
        assert len(job.attempts) == len(scenario.stops), where
        assert sum(1 for a in job.attempts.values() if not a.uncounted) <= MAX_ATTEMPTS, where
        # 2. no double launch: one task per (job, attempt), launched with that attempt's token
        for number, attempt in job.attempts.items():
            token = f"{job_id}-a{number}"
            assert attempt.client_token == token
            assert world.task_by_token.get(token) == attempt.task_arn, where
            # 3. monotonic: the attempt shows its newest state; history complete and ordered
            versions = [int(k[1:]) for k in sorted(attempt.history)]
            assert versions == sorted(versions)
            assert set(versions) >= world.delivered_versions[(job_id, number)], where
            assert attempt.version == max(versions), where
            assert attempt.last_status == attempt.history[max(attempt.history)]["status"], where
            assert attempt.outcome is not None, where
        tokens = {t for t in world.task_by_token if t.startswith(job_id + "-a")}
        assert tokens == {f"{job_id}-a{n}" for n in job.attempts}, where
    print(
        f"\nseed {seed}: {len(job_ids)} jobs, {world.deliveries} events delivered "
        f"(duplicates and redeliveries included), crashes {dict(world.crashes)}, "
        f"RunTask calls {sum(world.run_calls.values())} for {len(world.task_by_token)} tasks; "
        f"UpdateItems refused by their condition (each then one consistent GetItem): "
        + ", ".join(f"{k} {world.refused[k]} of {n}" for k, n in sorted(world.writes.items()))
        + "; "
        "0 lost, 0 double launches, 0 wrong terminal states (asserted above)"
    )

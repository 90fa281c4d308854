"""Shared fixtures: a moto AWS account with the jobtracker resources, and settings bound to it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = Path(__file__).resolve().parent / "events"
REGION = "us-east-1"

os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "jobtracker")
os.environ.setdefault("POWERTOOLS_DEV", "false")


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class AwsEnv:
    table: str
    cluster_arn: str
    task_definition_arn: str
    launch_queue_url: str
    retry_queue_url: str
    deadline_queue_url: str
    env: dict[str, str]
    run_task_tokens: list[str] = field(default_factory=list)
    sent: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)

    def sent_to(self, queue_url: str) -> list[tuple[dict[str, Any], int]]:
        return [(body, delay) for url, body, delay in self.sent if url == queue_url]

    def runs_per_token(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for token in self.run_task_tokens:
            counts[token] = counts.get(token, 0) + 1
        return counts


def reset_caches() -> None:
    from jobtracker.wiring import reset_defaults

    reset_defaults()


def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)


def provision(env_overrides: dict[str, str] | None = None) -> AwsEnv:
    """Create table, queues and an ECS cluster/task definition in the current moto account."""
    import boto3
    from moto.moto_api import state_manager

    from jobtracker.adapters.store import create_table

    # Tasks stay where RunTask left them unless a test says otherwise.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = ecs.create_cluster(clusterName="jobtracker")["cluster"]["clusterArn"]
    taskdef = ecs.register_task_definition(
        family="jobtracker-worker",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "worker",
                "image": "worker:latest",
                "essential": True,
                "memory": 512,
                "cpu": 256,
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    sqs = boto3.client("sqs", region_name=REGION)
    launch_q = sqs.create_queue(QueueName="launch")["QueueUrl"]
    retry_q = sqs.create_queue(QueueName="retry")["QueueUrl"]
    deadline_q = sqs.create_queue(QueueName="deadline")["QueueUrl"]
    definitions = {
        "demo": {
            "task_definition": taskdef,
            "container": "worker",
            "cluster": cluster,
            "subnets": [subnet],
            "security_groups": [sg],
            "log_group": "/jobtracker/jobs",
            "allow_command_override": True,
        },
        # The same task, but its command is the image's own (the default for a definition).
        "locked": {
            "task_definition": taskdef,
            "container": "worker",
            "cluster": cluster,
            "subnets": [subnet],
            "security_groups": [sg],
        },
    }
    env = {
        "TABLE_NAME": "jobtracker-test",
        "JOB_DEFINITIONS": json.dumps(definitions),
        "LAUNCH_QUEUE_URL": launch_q,
        "RETRY_QUEUE_URL": retry_q,
        "DEADLINE_QUEUE_URL": deadline_q,
        "EVENT_BUS_NAME": "default",
    }
    env.update(env_overrides or {})
    os.environ.update(env)
    reset_caches()
    create_table(env["TABLE_NAME"])
    return AwsEnv(
        table=env["TABLE_NAME"],
        cluster_arn=cluster,
        task_definition_arn=taskdef,
        launch_queue_url=launch_q,
        retry_queue_url=retry_q,
        deadline_queue_url=deadline_q,
        env=env,
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnv]:
    from moto import mock_aws

    _fake_credentials(monkeypatch)
    for name in (
        "TABLE_NAME",
        "JOB_DEFINITIONS",
        "LAUNCH_QUEUE_URL",
        "RETRY_QUEUE_URL",
        "DEADLINE_QUEUE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        env = provision()
        for name in env.env:
            monkeypatch.setenv(name, env.env[name])
        from jobtracker.adapters.aws import client

        def count_run_task(params: dict[str, Any], **_: Any) -> None:
            env.run_task_tokens.append(params.get("clientToken", ""))

        # moto ignores clientToken: count RunTask calls per token to prove no double launch.
        client("ecs").meta.events.register("provide-client-params.ecs.RunTask", count_run_task)

        def record_send(params: dict[str, Any], **_: Any) -> None:
            env.sent.append(
                (
                    params["QueueUrl"],
                    json.loads(params["MessageBody"]),
                    params.get("DelaySeconds", 0),
                )
            )

        client("sqs").meta.events.register("provide-client-params.sqs.SendMessage", record_send)
        yield env
    reset_caches()

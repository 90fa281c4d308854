"""ECS: building a RunTask request for one attempt, and the launcher that sends it.

The request is a pure function of (job, attempt, definition), so a retried handler sends the
same parameters with the same clientToken and ECS hands back the same task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from jobtracker.config import JobDefinition
from jobtracker.core.domain import (
    CAPACITY_MARKERS,
    CAPACITY_UNAVAILABLE,
    ContainerState,
    Job,
    LaunchFailure,
    TaskState,
    client_token,
    iso,
)

OVERRIDES_LIMIT = 8192  # ECS: containerOverrides/overrides ≤ 8,192 characters, JSON included
# What ECS errors mean for a job (ecs.md): limits and capacity make it wait, service errors are
# tried again a bounded number of times, anything else is the request's own fault.
ECS_WAIT_ERRORS = frozenset({"ThrottlingException", "RequestLimitExceeded"})
ECS_RETRY_ERRORS = frozenset({"ServerException", "ServiceUnavailableException"})


@dataclass(frozen=True)
class LaunchRequest:
    params: dict[str, Any]

    @property
    def client_token(self) -> str:
        return str(self.params["clientToken"])


@dataclass(frozen=True)
class LaunchResult:
    task_arn: str | None = None
    error: str | None = None
    failure: LaunchFailure = LaunchFailure.FATAL
    created_at: str | None = None

    @property
    def launched(self) -> bool:
        return self.task_arn is not None


@dataclass
class DescribedTask:
    job_id: str | None
    attempt: int | None
    state: TaskState


@dataclass
class Describe:
    tasks: list[DescribedTask] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # ARNs ECS answered MISSING for


class TaskLauncher(Protocol):
    def run_task(self, request: LaunchRequest) -> LaunchResult: ...
    def stop_task(self, cluster: str, task_arn: str, reason: str) -> None: ...
    def describe_tasks(self, cluster: str, task_arns: list[str]) -> Describe: ...


def job_environment(job: Job, attempt: int) -> list[dict[str, str]]:
    env = [
        {"name": "JOB_ID", "value": job.job_id},
        {"name": "JOB_ATTEMPT", "value": str(attempt)},
        {"name": "JOB_DEFINITION", "value": job.definition},
        {
            "name": "JOB_PARAMETERS",
            "value": json.dumps(job.spec.parameters, separators=(",", ":"), sort_keys=True),
        },
    ]
    if job.parent_id is not None:  # a child of an array: which one, of how many
        env += [
            {"name": "JOB_ARRAY_INDEX", "value": str(job.array_index)},
            {"name": "JOB_ARRAY_SIZE", "value": str(job.array_size)},
        ]
    env += [{"name": k, "value": v} for k, v in sorted(job.spec.environment.items())]
    return env


def build_overrides(job: Job, attempt: int, definition: JobDefinition) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": definition.container,
        "environment": job_environment(job, attempt),
    }
    if job.spec.command is not None:
        container["command"] = list(job.spec.command)
    return {"containerOverrides": [container]}


def overrides_size(overrides: dict[str, Any]) -> int:
    return len(json.dumps(overrides, separators=(",", ":")))


def worst_case_overrides_size(job: Job, definition: JobDefinition) -> int:
    # Attempt numbers grow to two digits: measure the largest the job can ever send.
    return overrides_size(build_overrides(job, 99, definition))


def build_run_task(job: Job, attempt: int, definition: JobDefinition) -> LaunchRequest:
    tags = [
        {"key": "jobtracker:job-id", "value": job.job_id},
        {"key": "jobtracker:definition", "value": job.definition},
        {"key": "jobtracker:attempt", "value": str(attempt)},
    ]
    tags += [{"key": k, "value": v} for k, v in sorted(job.spec.tags.items())]
    params: dict[str, Any] = {
        "cluster": definition.cluster,
        "taskDefinition": definition.task_definition,
        "count": 1,
        "clientToken": client_token(job.job_id, attempt),
        "startedBy": job.job_id,
        "group": f"jobtracker:{job.definition}"[:255],
        "overrides": build_overrides(job, attempt, definition),
        "tags": tags,
        "propagateTags": "TASK_DEFINITION",
        "enableECSManagedTags": True,
    }
    if definition.capacity_provider_strategy:
        params["capacityProviderStrategy"] = [
            {"capacityProvider": c.capacity_provider, "weight": c.weight, "base": c.base}
            for c in definition.capacity_provider_strategy
        ]
    elif definition.launch_type:
        params["launchType"] = definition.launch_type
    if definition.platform_version:
        params["platformVersion"] = definition.platform_version
    if definition.subnets:
        params["networkConfiguration"] = {
            "awsvpcConfiguration": {
                "subnets": list(definition.subnets),
                "securityGroups": list(definition.security_groups),
                "assignPublicIp": "ENABLED" if definition.assign_public_ip else "DISABLED",
            }
        }
    return LaunchRequest(params)


def log_stream_for(definition: JobDefinition, task_arn: str) -> str | None:
    if not definition.log_group:
        return None
    task_id = task_arn.rsplit("/", 1)[-1]
    prefix = definition.log_stream_prefix or "job"
    return f"{definition.log_group}:{prefix}/{definition.container}/{task_id}"


# RunTask failures[] reasons that mean "no room right now" (ecs.md): the job waits.


def _ts(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def task_state_from_describe(task: dict[str, Any]) -> DescribedTask:
    env: dict[str, str] = {}
    for override in (task.get("overrides") or {}).get("containerOverrides") or []:
        for var in override.get("environment") or []:
            env.setdefault(var.get("name", ""), var.get("value", ""))
    attempt_raw = env.get("JOB_ATTEMPT", "")
    state = TaskState(
        task_arn=task["taskArn"],
        last_status=task.get("lastStatus", "PROVISIONING"),
        version=int(task.get("version") or 0),
        desired_status=task.get("desiredStatus"),
        stop_code=task.get("stopCode"),
        stopped_reason=task.get("stoppedReason"),
        created_at=_ts(task.get("createdAt")),
        started_at=_ts(task.get("startedAt")),
        stopping_at=_ts(task.get("stoppingAt")),
        stopped_at=_ts(task.get("stoppedAt")),
        containers=[
            ContainerState(
                name=c.get("name", ""),
                exit_code=c.get("exitCode"),
                reason=c.get("reason"),
            )
            for c in task.get("containers") or []
        ],
        source="describe",
    )
    return DescribedTask(
        job_id=env.get("JOB_ID") or task.get("startedBy"),
        attempt=int(attempt_raw) if attempt_raw.isdigit() else None,
        state=state,
    )


class EcsLauncher:
    def _ecs(self) -> Any:
        from jobtracker.adapters.aws import client

        return client("ecs")

    def run_task(self, request: LaunchRequest) -> LaunchResult:
        from botocore.exceptions import ClientError

        try:
            response = self._ecs().run_task(**request.params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "ClientError")
            message = error.get("Message", str(exc))
            if code == "ConflictException":
                # Same token, other parameters: the task for this attempt already exists.
                ids = exc.response.get("resourceIds") or []
                if ids:
                    return LaunchResult(task_arn=str(ids[0]))
            if code in ECS_WAIT_ERRORS or CAPACITY_UNAVAILABLE in message:
                failure = LaunchFailure.WAIT
            elif code in ECS_RETRY_ERRORS:
                failure = LaunchFailure.RETRY
            else:
                failure = LaunchFailure.FATAL
            return LaunchResult(error=f"{code}: {message}", failure=failure)
        tasks = response.get("tasks") or []
        if tasks:
            task = tasks[0]
            return LaunchResult(task_arn=task["taskArn"], created_at=_ts(task.get("createdAt")))
        failures = response.get("failures") or []
        reason = (
            "; ".join(
                f"{f.get('reason', 'unknown')}" + (f" ({f['detail']})" if f.get("detail") else "")
                for f in failures
            )
            or "RunTask returned no task and no failure"
        )
        waits = any(marker in reason for marker in CAPACITY_MARKERS)
        return LaunchResult(
            error=reason, failure=LaunchFailure.WAIT if waits else LaunchFailure.FATAL
        )

    def stop_task(self, cluster: str, task_arn: str, reason: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._ecs().stop_task(cluster=cluster, task=task_arn, reason=reason[:255])
        except ClientError as exc:
            # A task that is already gone needs no stopping; the reconciler settles the rest.
            if exc.response.get("Error", {}).get("Code") not in (
                "InvalidParameterException",
                "ClientException",
            ):
                raise

    def describe_tasks(self, cluster: str, task_arns: list[str]) -> Describe:
        out = Describe()
        for i in range(0, len(task_arns), 100):  # DescribeTasks takes at most 100 tasks
            batch = task_arns[i : i + 100]
            response = self._ecs().describe_tasks(cluster=cluster, tasks=batch)
            for task in response.get("tasks") or []:
                out.tasks.append(task_state_from_describe(task))
            # Lost means ECS says so (reason MISSING); any other failure proves nothing.
            out.missing += [
                str(f.get("arn"))
                for f in response.get("failures") or []
                if f.get("reason") == "MISSING" and f.get("arn") in batch
            ]
        return out


@lru_cache(maxsize=1)
def default_launcher() -> EcsLauncher:
    return EcsLauncher()

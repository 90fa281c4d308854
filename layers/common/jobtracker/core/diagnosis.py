"""One line of what to do about a failed attempt. No I/O.

The line comes from what decided the attempt: the retry rule it records (`Attempt.rule`, a name
from core.policy.DEFAULT_RULES, maybe with a "+exhausted" suffix), or what the tracker decided
itself (a timeout, a cancel, a launch given up). An attempt a rule of the job's own decided is
diagnosed by the first default rule that matches it. What became of the attempt (retried,
uncounted, retries exhausted) is added from what the attempt records, so each line says only what
happened and what to do about it. Every default rule has a line: tests/unit/test_diagnosis.py
fails when a rule is added to DEFAULT_RULES without one.
"""

from __future__ import annotations

from functools import cache

from jobtracker.core.domain import STOP_TASK_CODE, Attempt, Outcome
from jobtracker.core.policy import RetryPolicy, decide, deciding_containers, default_policy

DIAGNOSES: dict[str, str] = {
    # ---- the default retry rules, by name (core.policy.DEFAULT_RULES) ----
    "spot-interruption": (
        "Fargate Spot interrupted the task to take its capacity back: make long jobs "
        "checkpoint, or run the definition on FARGATE if interruptions cost more than Spot saves"
    ),
    "task-lost": (
        "ECS no longer knows the task (its host died, or its STOPPED event never arrived): if it "
        "recurs, check the ECS event rule and the event dead-letter queue"
    ),
    "oom": (
        "The container ran out of memory: raise the definition's memory (or the container's "
        "memory limit) or reduce the job's working set"
    ),
    "oom-exit-137": (
        "The container was killed (exit 137, SIGKILL), most often for memory: raise the "
        "definition's memory, or make the job exit within stop_timeout_seconds of SIGTERM"
    ),
    "image-not-found": (
        "The image does not exist: check the image name and tag (or digest) in the task "
        "definition, and that it was pushed to that registry and region"
    ),
    "image-access-denied": (
        "Pulling the image was denied: give the task execution role ECR read access "
        "(ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer) or the "
        "registry's credentials, and check the repository policy"
    ),
    "image-pull-transient": (
        "The image could not be pulled: check the image name, the execution role's ECR access "
        "and the subnet's route to ECR (a NAT, or VPC endpoints for ecr.api, ecr.dkr and S3)"
    ),
    "resource-init": (
        "The task could not be set up (ResourceInitializationError): check that the execution "
        "role can read the task's secrets and write its log group, that the log group exists, "
        "and that the subnet reaches Secrets Manager/SSM, Logs and ECR"
    ),
    "container-runtime-timeout": (
        "Fargate's container runtime timed out, an AWS-side fault: if it recurs, send the task "
        "ARN to AWS Support"
    ),
    "docker-timeout": (
        "The container runtime timed out (DockerTimeoutError), an AWS-side fault: if it recurs, "
        "send the task ARN to AWS Support"
    ),
    "cannot-start": (
        "The container could not start: check the command and entrypoint, that the image's "
        "architecture matches the task definition's, and its mounts"
    ),
    "cannot-create-volume": (
        "A volume could not be created: check the task definition's volumes (EFS file system, "
        "access point, a mount target in the task's AZ and its security group)"
    ),
    "internal-error": (
        "ECS had an internal error: if it persists, check the AWS Health Dashboard for ECS in "
        "the region"
    ),
    "eni-timeout": (
        "The task's network interface was not ready in time: if it recurs, check the subnets' "
        "free IP addresses and the account's network interface quota"
    ),
    "storage-timeout": (
        "The task's ephemeral storage was not ready in time, an AWS-side fault: if it recurs, "
        "send the task ARN to AWS Support"
    ),
    "eni-auth-failure": (
        "ECS was not allowed to create the task's network interface (EC2 AuthFailure): check "
        "the ECS service-linked role and any SCP that denies ec2:CreateNetworkInterface"
    ),
    "service-discovery": (
        "The task could not be registered in Cloud Map: check the namespace, the service and "
        "the Cloud Map quotas"
    ),
    "infrastructure-health": (
        "ECS stopped the task because its host was unhealthy, an AWS-side fault: make the job "
        "safe to run again (idempotent or checkpointed)"
    ),
    "cannot-stop": (
        "The container could not be stopped cleanly: make the job exit on SIGTERM within "
        "stop_timeout_seconds"
    ),
    "cannot-inspect": (
        "ECS could not inspect the container, an agent or runtime fault: if it recurs, send the "
        "task ARN to AWS Support"
    ),
    "start-deadline": (
        "The task did not reach RUNNING within start_timeout_seconds: check the image's size "
        "and pull time and the subnet's route to ECR, or raise start_timeout_seconds"
    ),
    "failed-to-start": (
        "The task failed to start (TaskFailedToStart): read stoppedReason; check the image, the "
        "execution role and the network"
    ),
    "retryable-exit-2": (
        "The job exited 2, its own 'worth retrying' code: read its log for the cause if it "
        "keeps failing"
    ),
    # ---- failures no default rule matches (the policy's "no-matching-rule") ----
    "no-matching-rule": (
        "The task stopped without an exit code and no rule knows why (never taken as success): "
        "read stoppedReason and the container reasons; add a retry rule if it is transient"
    ),
    "exit-code": (
        "The job exited non-zero: read its log for the error; exit 2 instead where a retry can help"
    ),
    "stopped-outside": (
        "The task was stopped outside jobtracker (StopTask, the console or a deployment; "
        "stoppedReason says who): cancel through the API instead, and submit again to rerun"
    ),
    # ---- what the tracker decides itself ----
    "timed-out": (
        "The attempt ran past timeout_seconds and was stopped: raise timeout_seconds, or make "
        "the job faster or resumable; a timeout is never retried"
    ),
    "cancelled": (
        "Cancelled on request (the API, or a schedule replacing its run): submit again to rerun"
    ),
    "queue-timeout": (
        "No launch capacity within queue_timeout_seconds (throttling, Fargate capacity): raise "
        "queue_timeout_seconds, spread the load, or give the definition subnets in more AZs"
    ),
    "launch-failures-exhausted": (
        "RunTask kept failing with service errors: check ECS's health in the region and the "
        "job's launch_error, then submit again"
    ),
    "launch-failed": (
        "ECS refused the launch: fix the job definition (its task definition, cluster, subnets, "
        "security groups, or the launcher's permissions) as the job's status_reason says; a "
        "definition no longer configured fails the same way"
    ),
}

# Suffixes core.policy.decide adds to a rule's label.
EXHAUSTED = "+exhausted"
UNCOUNTED_EXHAUSTED = "+uncounted-exhausted"
STOPPED_OUTSIDE_CODES = frozenset({STOP_TASK_CODE, "ServiceSchedulerInitiated"})


@cache
def _defaults() -> RetryPolicy:
    return default_policy()


def _cause(attempt: Attempt) -> str:
    """The diagnosis key of a failure from its facts: the first default rule that matches, else
    what kind of failure no rule knows."""
    # Nothing spent yet: decide() then names the rule without an exhaustion suffix.
    rule = decide(_defaults(), attempt, counted=0, uncounted=0).rule
    if rule != "no-matching-rule":
        return rule
    if attempt.stop_code in STOPPED_OUTSIDE_CODES:
        return "stopped-outside"
    if any(c.exit_code not in (None, 0) for c in deciding_containers(attempt)):
        return "exit-code"
    return "no-matching-rule"


def _split(label: str) -> tuple[str, str]:
    for suffix in (UNCOUNTED_EXHAUSTED, EXHAUSTED):
        if label.endswith(suffix):
            return label.removesuffix(suffix), suffix
    return label, ""


def _what_followed(attempt: Attempt, suffix: str) -> str | None:
    if suffix == EXHAUSTED:
        return "retries exhausted (max_attempts reached)"
    if suffix == UNCOUNTED_EXHAUSTED:
        return "retried, and counted: the uncounted retries (max_uncounted) are used up"
    if attempt.outcome in (Outcome.RETRY, Outcome.LOST):
        return "retried uncounted" if attempt.uncounted else "retried"
    return None


def diagnose(attempt: Attempt) -> str | None:
    """What to do about the attempt; None for a success or an attempt not yet over."""
    if attempt.outcome == Outcome.SUCCEEDED:
        return None
    if attempt.outcome == Outcome.TIMED_OUT:
        return DIAGNOSES["timed-out"] + "."
    if attempt.outcome == Outcome.CANCELLED:
        return DIAGNOSES["cancelled"] + "."
    if attempt.outcome is None and not attempt.awaiting_decision:
        return None
    label, suffix = _split(attempt.rule or "")
    # "no-matching-rule" says only what did not match: the facts say what kind of failure it was.
    known = label in DIAGNOSES and label != "no-matching-rule"
    key = label if known else _cause(attempt)
    followed = _what_followed(attempt, suffix)
    return DIAGNOSES[key] + (f"; {followed}." if followed else ".")

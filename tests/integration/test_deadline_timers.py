"""Integration (moto): a launch sends its attempt's timer to the deadline queue, and
retry_decider, handed the timer as Lambda would, stops the overdue task through ECS."""

from __future__ import annotations

import time

import boto3

from tests.conftest import AwsEnv
from tests.helpers import drain, invoke, job_event, submitted


def test_a_launched_job_with_a_timeout_is_stopped_by_its_timer(aws: AwsEnv) -> None:
    # GIVEN a job with a 1 s timeout, submitted through create_job, its task RUNNING
    job = submitted({"definition": "demo", "timeout_seconds": 1})
    invoke("functions/on_task_state", job_event(job, "task_running", aws.cluster_arn))
    # WHEN its timer becomes visible (moto delays in real time) and retry_decider takes it
    time.sleep(1.5)
    handled = drain(aws.deadline_queue_url)
    # THEN the timer was the attempt's, and ECS was asked to stop its task with the timeout's reason
    assert handled == [{"kind": "deadline", "job_id": job["id"], "attempt": 1}], handled
    arn = job["attempts"][0]["task_arn"]
    (task,) = boto3.client("ecs").describe_tasks(cluster=aws.cluster_arn, tasks=[arn])["tasks"]
    assert task["desiredStatus"] == "STOPPED", task["desiredStatus"]
    assert task.get("stoppedReason") == "jobtracker: timeout", task.get("stoppedReason")

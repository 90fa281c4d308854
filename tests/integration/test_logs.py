"""Integration: an attempt's logs, read through the API from CloudWatch Logs (moto), where the
awslogs driver writes them (`<prefix>/<container>/<task id>` in the definition's log group)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import boto3

from tests.conftest import REGION, AwsEnv
from tests.helpers import call_api, submitted

GROUP = "/jobtracker/jobs"  # the demo definition's log group (tests/conftest.py)


def write_lines(job: dict[str, Any], lines: list[str], attempt: int = 1, at: int = 0) -> None:
    """What the awslogs driver does for the attempt's task."""
    logs = boto3.client("logs", region_name=REGION)
    stream = job["attempts"][attempt - 1]["logs"]["stream"]
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=GROUP)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    base = int(time.time() * 1000) - 60_000 + at  # CloudWatch refuses events 14 days old
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": base + i, "message": m} for i, m in enumerate(lines)],
    )


def test_a_launched_attempt_links_to_its_task_in_the_ecs_console(aws: AwsEnv) -> None:
    # GIVEN a launched job
    job = submitted()
    arn = job["attempts"][0]["task_arn"]
    cluster, task_id = arn.split(":task/", 1)[1].split("/")
    # WHEN it is read
    attempt = call_api("GET", f"/jobs/{job['id']}").body["attempts"][0]
    # THEN the attempt links to that task's page in the ECS console
    assert attempt["task_url"] == (
        f"https://{REGION}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/tasks/{task_id}"
        f"/configuration?region={REGION}"
    ), attempt["task_url"]


def read(job_id: str, query: str | None = None) -> Any:
    return call_api("GET", f"/jobs/{job_id}/logs", query=query)


def test_a_launched_attempt_names_its_log_group_stream_and_console_link(aws: AwsEnv) -> None:
    # GIVEN a launched job
    job = submitted()
    task_id = job["attempts"][0]["task_arn"].rsplit("/", 1)[-1]
    # WHEN it is read
    logs = call_api("GET", f"/jobs/{job['id']}").body["attempts"][0]["logs"]
    # THEN the attempt names the stream the awslogs driver writes, and a console link to it
    assert logs["group"] == GROUP, logs
    assert logs["stream"] == f"job/worker/{task_id}", logs
    assert logs["console_url"].startswith(
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logsV2:"
    ), logs
    assert "$252Fjobtracker$252Fjobs" in logs["console_url"], "group escaped as the console does"


def test_logs_are_read_oldest_first_in_pages_that_continue_with_next_token(aws: AwsEnv) -> None:
    # GIVEN an attempt that wrote 5 lines
    job = submitted()
    write_lines(job, [f"line {i}" for i in range(5)])
    # WHEN they are read 2 at a time
    first = read(job["id"], "limit=2")
    second = read(job["id"], f"limit=2&next_token={first.body['next_token']}")
    # THEN the pages follow each other in order
    assert first.status == 200, first.body
    assert [e["message"] for e in first.body["events"]] == ["line 0", "line 1"]
    assert [e["message"] for e in second.body["events"]] == ["line 2", "line 3"]
    assert first.body["events"][0]["at"].endswith("Z"), "timestamps are ISO UTC"


def test_following_a_running_attempt_sees_lines_written_after_the_last_read(aws: AwsEnv) -> None:
    # GIVEN a running attempt whose lines so far were all read
    job = submitted()
    write_lines(job, ["starting"])
    caught_up = read(job["id"]).body
    again = read(job["id"], f"next_token={caught_up['next_token']}").body
    assert again["events"] == [], "nothing new yet"
    assert again["finished"] is False, "the attempt is still running"
    # WHEN the task writes more
    write_lines(job, ["halfway", "done"], at=10)
    # THEN the follower's next read, from its token, returns only the new lines
    more = read(job["id"], f"next_token={again['next_token']}").body
    assert [e["message"] for e in more["events"]] == ["halfway", "done"], more


def test_an_attempt_whose_task_has_not_written_yet_has_no_lines_and_is_not_finished(
    aws: AwsEnv,
) -> None:
    # GIVEN a launched job whose stream does not exist yet
    job = submitted()
    # WHEN its logs are read
    reply = read(job["id"])
    # THEN an empty page, not an error
    assert reply.status == 200, reply.body
    assert reply.body["events"] == []
    assert reply.body["finished"] is False
    assert reply.body["attempt"] == 1


def test_an_attempt_that_does_not_exist_is_404(aws: AwsEnv) -> None:
    job = submitted()
    reply = read(job["id"], "attempt=3")
    assert reply.status == 404, reply.body
    assert "no attempt 3" in reply.body["error"]["message"]


def test_a_token_the_api_did_not_hand_out_is_400(aws: AwsEnv) -> None:
    # GIVEN a stream with lines
    job = submitted()
    write_lines(job, ["x"])
    # WHEN it is read with a forged token
    reply = read(job["id"], "next_token=not-a-token")
    # THEN a clear 400 naming the field
    assert reply.status == 400, reply.body
    assert reply.body["error"]["fields"][0]["field"] == "next_token"


def test_a_definition_without_a_log_group_has_no_logs_link(aws: AwsEnv) -> None:
    # GIVEN a job of a definition that logs nowhere
    job = submitted({"definition": "locked"})
    # THEN no link, and its logs read as an empty page
    assert job["attempts"][0]["logs"] is None
    reply = read(job["id"])
    assert reply.status == 200 and reply.body["events"] == [], reply.body

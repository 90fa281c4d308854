"""Integration: API handler → logic → moto (DynamoDB, ECS, SQS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import AwsEnv
from tests.helpers import (
    call_api,
    drain,
    ecs_task_count,
    error,
    inject,
    invoke,
    job_event,
    submission_of,
    table_item_count,
)


def submit(body: dict[str, Any] | None = None, **headers: str) -> Any:
    payload = {"definition": "demo", "parameters": {"n": 1}} if body is None else body
    return call_api("POST", "/jobs", payload, headers=headers or None)


def test_post_launches_task_with_expected_run_task_parameters(aws: AwsEnv) -> None:
    # Given a RunTask spy
    captured: list[dict[str, Any]] = []
    inject("ecs", "RunTask", lambda p: captured.append(p) or None)
    # When a job is submitted
    reply = submit(
        {
            "definition": "demo",
            "command": ["python", "-m", "job"],
            "parameters": {"rows": 10, "name": "x"},
            "environment": {"LOG_LEVEL": "debug"},
            "tags": {"team": "data"},
        }
    )
    # Then it is launched with job metadata in the overrides, and stored STARTING
    assert reply.status == 201, reply.body
    job = reply.body
    assert job["status"] == "STARTING"
    params = captured[0]
    assert params["clientToken"] == f"{job['id']}-a1"
    assert params["startedBy"] == job["id"]
    assert params["group"] == "jobtracker:demo"
    assert params["taskDefinition"] == aws.task_definition_arn
    assert params["cluster"] == aws.cluster_arn
    container = params["overrides"]["containerOverrides"][0]
    assert container["name"] == "worker"
    assert container["command"] == ["python", "-m", "job"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env == {
        "JOB_ID": job["id"],
        "JOB_ATTEMPT": "1",
        "JOB_DEFINITION": "demo",
        "JOB_PARAMETERS": json.dumps({"name": "x", "rows": 10}, separators=(",", ":")),
        "LOG_LEVEL": "debug",
    }
    tags = {t["key"]: t["value"] for t in params["tags"]}
    assert tags == {
        "jobtracker:job-id": job["id"],
        "jobtracker:definition": "demo",
        "jobtracker:attempt": "1",
        "team": "data",
    }
    assert params["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
    attempt = job["attempts"][0]
    assert attempt["task_arn"].startswith("arn:aws:ecs:")
    assert attempt["client_token"] == f"{job['id']}-a1"
    assert job["links"]["self"] == f"/jobs/{job['id']}"
    # And the stored job reads back the same
    got = call_api("GET", f"/jobs/{job['id']}")
    assert got.status == 200
    assert got.body["attempts"][0]["task_arn"] == attempt["task_arn"]
    assert aws.runs_per_token() == {f"{job['id']}-a1": 1}


def test_get_unknown_job_is_404(aws: AwsEnv) -> None:
    reply = call_api("GET", "/jobs/job-doesnotexist")
    assert reply.status == 404
    assert reply.body["error"]["code"] == "not_found"


def test_list_pages_newest_first_and_filters(aws: AwsEnv) -> None:
    # Given 7 demo jobs, 2 of them cancelled
    ids = [submit().body["id"] for _ in range(7)]
    for job_id in ids[:2]:
        # a launched job's cancel stops its task: 202, CANCELLING until the task stops
        cancelled = call_api("POST", f"/jobs/{job_id}/cancel")
        assert (cancelled.status, cancelled.body["status"]) == (202, "CANCELLING"), cancelled
    # When listing 3 per page
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        query = "limit=3" + (f"&next_token={token}" if token else "")
        page = call_api("GET", "/jobs", query=query)
        assert page.status == 200, page.body
        seen += [j["id"] for j in page.body["jobs"]]
        pages += 1
        token = page.body["next_token"]
        if not token:
            break
    # Then every job appears once, newest first
    assert seen == list(reversed(ids))
    assert pages >= 3
    # And filters use the indexes
    cancelling = call_api("GET", "/jobs", query="status=CANCELLING&limit=100").body["jobs"]
    assert {j["id"] for j in cancelling} == set(ids[:2])
    starting = call_api("GET", "/jobs", query="status=STARTING&definition=demo&limit=2")
    assert len(starting.body["jobs"]) == 2
    rest = call_api(
        "GET",
        "/jobs",
        query=f"status=STARTING&definition=demo&limit=100&next_token={starting.body['next_token']}",
    )
    assert len(starting.body["jobs"]) + len(rest.body["jobs"]) == 5
    assert call_api("GET", "/jobs", query="definition=other").body["jobs"] == []


def test_bad_next_token_is_400(aws: AwsEnv) -> None:
    for token in ["garbage!!", "eyJpIjoiYWxsIn0", "e30"]:
        reply = call_api("GET", "/jobs", query=f"next_token={token}")
        assert reply.status == 400, (token, reply.body)
        assert reply.body["error"]["code"] == "bad_token"


def test_token_from_another_filter_is_rejected(aws: AwsEnv) -> None:
    for _ in range(3):
        submit()
    token = call_api("GET", "/jobs", query="limit=1").body["next_token"]
    reply = call_api("GET", "/jobs", query=f"status=RUNNING&next_token={token}")
    assert reply.status == 400


def test_a_tag_filter_fills_its_page_with_tagged_jobs_across_the_lists_pages(
    aws: AwsEnv,
) -> None:
    # GIVEN two jobs tagged team=data among untagged ones, newest first: T, u, u, T, u
    tagged = {"definition": "demo", "tags": {"team": "data"}}
    order = [tagged, None, tagged, None, None][::-1]  # submitted oldest first
    ids = [submit(body).body["id"] for body in order]
    want = [i for i, body in zip(ids, order, strict=True) if body is tagged][::-1]
    # WHEN the list is asked for two jobs tagged team=data
    reply = call_api("GET", "/jobs", query="tag=team%3Ddata&limit=2")
    # THEN both come, newest first, read past the untagged ones between them
    assert reply.status == 200, reply.body
    assert [j["id"] for j in reply.body["jobs"]] == want, reply.body


def test_a_tag_filter_without_a_value_is_a_422_naming_it(aws: AwsEnv) -> None:
    # WHEN the list is asked with a tag that is not key=value
    reply = call_api("GET", "/jobs", query="tag=team")
    # THEN it is refused, naming the field
    assert reply.status == 422, reply.body
    assert reply.body["error"]["fields"][0]["field"] == "tag", reply.body


def test_idempotency_key_replay_returns_same_job_and_conflict_on_other_body(aws: AwsEnv) -> None:
    # Given a job submitted with a key
    first = submit(None, **{"Idempotency-Key": "order-42"})
    assert first.status == 201
    # When the same request is replayed
    again = submit(None, **{"Idempotency-Key": "order-42"})
    # Then the same job comes back, and nothing new is launched
    assert again.status == 200
    assert again.body["id"] == first.body["id"]
    assert ecs_task_count(aws.cluster_arn) == 1
    # When the key is reused with another body
    other = submit(
        {"definition": "demo", "parameters": {"n": 2}}, **{"Idempotency-Key": "order-42"}
    )
    # Then 409 and nothing written
    assert other.status == 409
    assert other.body["error"]["code"] == "idempotency_conflict"
    assert ecs_task_count(aws.cluster_arn) == 1
    assert table_item_count(aws.table) == 2  # one job + one key


def test_replay_after_crash_before_launch_reattaches(aws: AwsEnv) -> None:
    # Given the first try stored its key and the job, then crashed before RunTask
    from jobtracker.usecases.submit import build_job
    from jobtracker.wiring import default_deps

    deps = default_deps()
    submission = submission_of({"definition": "demo", "parameters": {"n": 1}})
    job = build_job(
        submission, deps.settings, deps.clock(), "arn:aws:iam::000000000000:user/local-developer"
    )
    deps.repo.claim_idempotency(key_record(job.job_id, submission))
    deps.repo.create(job)
    # When the client retries with the same key
    again = submit(None, **{"Idempotency-Key": "k1"})
    # Then the stored job is launched once, not a second job
    assert again.status == 200
    assert again.body["id"] == job.job_id
    assert again.body["status"] == "STARTING"
    assert aws.runs_per_token() == {f"{job.job_id}-a1": 1}


def test_replay_after_crash_between_key_and_job_creates_the_job_once(aws: AwsEnv) -> None:
    # Given the first try stored its key, then crashed before it stored the job
    from jobtracker.core.domain import new_job_id

    submission = submission_of({"definition": "demo", "parameters": {"n": 1}})
    job_id = new_job_id()
    from jobtracker.wiring import default_deps

    default_deps().repo.claim_idempotency(key_record(job_id, submission))
    # When the client retries with the same key and body
    again = submit(None, **{"Idempotency-Key": "k1"})
    # Then the job the key names is created and launched, once
    assert again.status == 200, again.body
    assert again.body["id"] == job_id and again.body["status"] == "STARTING"
    assert aws.runs_per_token() == {f"{job_id}-a1": 1}
    assert table_item_count(aws.table) == 2  # one job + one key


def key_record(job_id: str, submission: Any) -> Any:
    from jobtracker.usecases.ports import IdempotencyRecord
    from jobtracker.usecases.submit import body_hash, idempotency_item_key

    return IdempotencyRecord(
        key=idempotency_item_key("arn:aws:iam::000000000000:user/local-developer", "k1"),
        job_id=job_id,
        body_hash=body_hash(submission),
        expires_at=2_000_000_000,
    )


@pytest.mark.parametrize(
    "fault",
    [
        {
            "failures": [
                {
                    "arn": "x",
                    "reason": "Capacity is unavailable at this time. Please try again later or in a different availability zone",
                }
            ],
            "tasks": [],
        },
        {"failures": [{"arn": "x", "reason": "RESOURCE:MEMORY"}], "tasks": []},
        error("ThrottlingException", "Rate exceeded"),
        error("ServerException", "Service unavailable"),
    ],
    ids=["capacity", "resource-memory", "throttle", "server-error"],
)
def test_launch_failure_keeps_job_pending_and_queues_a_launch_retry(
    aws: AwsEnv, fault: dict[str, Any]
) -> None:
    # Given RunTask fails
    inject("ecs", "RunTask", lambda p: json.loads(json.dumps(fault)))
    # When a job is submitted
    reply = submit()
    # Then it is accepted (202), PENDING, with the error, and handed to the launch queue
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "PENDING"
    assert reply.body["launch_error"]
    assert reply.body["not_before"]
    sent = aws.sent_to(aws.launch_queue_url)
    assert [body for body, _ in sent] == [
        {"kind": "launch", "job_id": reply.body["id"], "attempt": 1}
    ]
    assert 2 <= sent[0][1] <= 6  # launch backoff: 5 s base, half of it jittered
    assert ecs_task_count(aws.cluster_arn) == 0


def test_fatal_launch_error_fails_job_with_reason(aws: AwsEnv) -> None:
    inject(
        "ecs",
        "RunTask",
        lambda p: error("InvalidParameterException", "No Fargate configuration exists"),
    )
    reply = submit()
    assert reply.status == 201
    assert reply.body["status"] == "FAILED"
    assert "InvalidParameterException" in reply.body["status_reason"]
    assert aws.sent_to(aws.launch_queue_url) == []


def test_conflict_exception_reattaches_to_existing_task(aws: AwsEnv) -> None:
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/jobtracker/{'a' * 32}"
    inject(
        "ecs",
        "RunTask",
        lambda p: {
            "Error": {"Code": "ConflictException", "Message": "token reused"},
            "resourceIds": [arn],
        },
    )
    reply = submit()
    assert reply.status == 201
    assert reply.body["attempts"][0]["task_arn"] == arn


LONG = "x" * 9000

BAD_REQUESTS: list[tuple[str, Any, dict[str, str] | None, int, str]] = [
    (
        "NUL byte in a command argument",
        {"definition": "demo", "command": ["echo", "a\u0000b"]},
        None,
        422,
        "command",
    ),
    (
        "NUL byte in an environment value",
        {"definition": "demo", "environment": {"GREETING": "hi\u0000"}},
        None,
        422,
        "environment",
    ),
    (
        "body nested 500 deep",
        '{"definition": "demo", "parameters": {"a": ' + "[" * 500 + "]" * 500 + "}}",
        {"content-type": "application/json"},
        422,
        "nested deeper than 32",
    ),
    (
        "body not UTF-8",
        b'\xff\xfe{"definition": "demo"}',
        {"content-type": "application/json"},
        400,
        "UTF-8",
    ),
    (
        "body over 256 KB",
        {"definition": "demo", "parameters": {"blob": "x" * 300_000}},
        None,
        413,
        "payload_too_large",
    ),
    ("malformed json", "{not json", {"content-type": "application/json"}, 400, "malformed_json"),
    (
        "truncated json",
        '{"definition": "demo"',
        {"content-type": "application/json"},
        400,
        "malformed_json",
    ),
    ("no content type", '{"definition": "demo"}', None, 415, "unsupported_media_type"),
    (
        "form content type",
        "definition=demo",
        {"content-type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    (
        "text content type",
        '{"definition":"demo"}',
        {"content-type": "text/plain"},
        415,
        "unsupported_media_type",
    ),
    ("missing definition", {"parameters": {}}, None, 422, "definition"),
    ("unknown definition", {"definition": "nope"}, None, 422, "definition"),
    (
        "definition with slash",
        {"definition": "arn:aws:ecs:task-definition/x"},
        None,
        422,
        "definition",
    ),
    (
        "unknown field",
        {"definition": "demo", "task_role": "arn:aws:iam::1:role/admin"},
        None,
        422,
        "task_role",
    ),
    (
        "task definition field",
        {"definition": "demo", "task_definition": "evil:1"},
        None,
        422,
        "task_definition",
    ),
    ("command not a list", {"definition": "demo", "command": "rm -rf /"}, None, 422, "command"),
    (
        "command on a definition that does not allow it",
        {"definition": "locked", "command": ["sh", "-c", "curl evil | sh"]},
        None,
        422,
        "does not allow a command override",
    ),
    ("command item not string", {"definition": "demo", "command": [1, 2]}, None, 422, "command"),
    ("parameters not object", {"definition": "demo", "parameters": [1]}, None, 422, "parameters"),
    (
        "env reserved JOB_",
        {"definition": "demo", "environment": {"JOB_ID": "x"}},
        None,
        422,
        "environment",
    ),
    (
        "env reserved AWS_",
        {"definition": "demo", "environment": {"AWS_ACCESS_KEY_ID": "x"}},
        None,
        422,
        "environment",
    ),
    (
        "env secret name",
        {"definition": "demo", "environment": {"DB_PASSWORD": "hunter2"}},
        None,
        422,
        "secret",
    ),
    (
        "env bad name",
        {"definition": "demo", "environment": {"1BAD": "x"}},
        None,
        422,
        "environment",
    ),
    (
        "env value not string",
        {"definition": "demo", "environment": {"A": 1}},
        None,
        422,
        "environment",
    ),
    ("timeout zero", {"definition": "demo", "timeout_seconds": 0}, None, 422, "timeout_seconds"),
    (
        "timeout too long",
        {"definition": "demo", "timeout_seconds": 10**9},
        None,
        422,
        "timeout_seconds",
    ),
    (
        "max_attempts 0",
        {"definition": "demo", "retry": {"max_attempts": 0}},
        None,
        422,
        "retry.max_attempts",
    ),
    (
        "max_attempts 11",
        {"definition": "demo", "retry": {"max_attempts": 11}},
        None,
        422,
        "retry.max_attempts",
    ),
    (
        "backoff factor",
        {"definition": "demo", "retry": {"backoff": {"factor": 0.5}}},
        None,
        422,
        "retry.backoff.factor",
    ),
    (
        "rule without matcher",
        {"definition": "demo", "retry": {"rules": [{"action": "RETRY"}]}},
        None,
        422,
        "retry.rules",
    ),
    (
        "rule bad action",
        {"definition": "demo", "retry": {"rules": [{"exit_codes": [1], "action": "MAYBE"}]}},
        None,
        422,
        "retry.rules",
    ),
    (
        "rule exit code 300",
        {"definition": "demo", "retry": {"rules": [{"exit_codes": [300], "action": "RETRY"}]}},
        None,
        422,
        "retry.rules",
    ),
    ("tag aws prefix", {"definition": "demo", "tags": {"aws:x": "y"}}, None, 422, "tags"),
    ("tag value too long", {"definition": "demo", "tags": {"k": "v" * 300}}, None, 422, "tags"),
    (
        "too many tags",
        {"definition": "demo", "tags": {f"k{i}": "v" for i in range(48)}},
        None,
        422,
        "tags",
    ),
    (
        "overrides too large",
        {"definition": "demo", "parameters": {"blob": LONG}},
        None,
        422,
        "overrides_too_large",
    ),
    (
        "lone surrogate in an environment value",
        '{"definition": "demo", "environment": {"A": "\\ud800"}}',
        {"content-type": "application/json"},
        400,
        "not valid Unicode",
    ),
    (
        "lone surrogate in a field name",
        '{"definition": "demo", "\\ud800": 1}',
        {"content-type": "application/json"},
        400,
        "not valid Unicode",
    ),
    (
        "NaN in parameters",
        '{"definition": "demo", "parameters": {"x": NaN}}',
        {"content-type": "application/json"},
        400,
        "malformed_json",
    ),
    (
        "a number past a double in parameters",
        '{"definition": "demo", "parameters": {"x": 1e999}}',
        {"content-type": "application/json"},
        422,
        "too large",
    ),
    (
        "timeout in another script's digits",
        {"definition": "demo", "timeout_seconds": "\u0663\u0660"},
        None,
        422,
        "timeout_seconds",
    ),
    ("body is a list", [{"definition": "demo"}], None, 422, "body"),
    ("empty body", None, {"content-type": "application/json"}, 422, "body"),
    (
        "bad idempotency key",
        {"definition": "demo"},
        {"Idempotency-Key": "has spaces in it"},
        400,
        "Idempotency-Key",
    ),
    ("array of one", {"definition": "demo", "array": {"size": 1}}, None, 422, "array.size"),
    (
        "array over 10,000",
        {"definition": "demo", "array": {"size": 10_001}},
        None,
        422,
        "array.size",
    ),
    (
        "array running more than its size",
        {"definition": "demo", "array": {"size": 5, "max_running": 6}},
        None,
        422,
        "array.max_running",
    ),
    (
        "array tolerating more failures than its size",
        {"definition": "demo", "array": {"size": 5, "tolerated_failures": 6}},
        None,
        422,
        "array.tolerated_failures",
    ),
    (
        "array with both failure thresholds",
        {
            "definition": "demo",
            "array": {"size": 5, "tolerated_failures": 1, "tolerated_failure_percent": 10},
        },
        None,
        422,
        "not both",
    ),
    (
        "array with an unknown field",
        {"definition": "demo", "array": {"size": 5, "parallelism": 2}},
        None,
        422,
        "array.parallelism",
    ),
    (
        "dependency on a job that does not exist",
        {"definition": "demo", "depends_on": [{"job_id": "job-01kdvdna00e9am43kzyxwr75w6"}]},
        None,
        422,
        "depends_on[0].job_id",
    ),
    (
        "dependency with an unknown condition",
        {"definition": "demo", "depends_on": [{"job_id": "job-x", "condition": "afterok"}]},
        None,
        422,
        "depends_on.0.condition",
    ),
    (
        "more than 100 dependencies",
        {"definition": "demo", "depends_on": [{"job_id": f"job-{i}"} for i in range(101)]},
        None,
        422,
        "depends_on",
    ),
    (
        "the same dependency twice",
        {"definition": "demo", "depends_on": [{"job_id": "job-x"}, {"job_id": "job-x"}]},
        None,
        422,
        "names job-x twice",
    ),
    (
        "a sequential array with a window",
        {"definition": "demo", "array": {"size": 5, "sequential": True, "max_running": 2}},
        None,
        422,
        "one child at a time",
    ),
    (
        "a sequential condition on an array that is not sequential",
        {"definition": "demo", "array": {"size": 5, "sequential_condition": "finished"}},
        None,
        422,
        "array.sequential_condition",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "mentions"),
    BAD_REQUESTS,
    ids=[b[0] for b in BAD_REQUESTS],
)
def test_bad_request_is_rejected_with_a_useful_error_and_nothing_happens(
    aws: AwsEnv, name: str, body: Any, headers: dict[str, str] | None, status: int, mentions: str
) -> None:
    # When a bad request is posted
    reply = call_api("POST", "/jobs", body, headers=headers)
    # Then it is answered with the one error shape, naming the problem
    assert reply.status == status, reply.body
    assert reply.headers.get("Content-Type") == "application/json"
    err = reply.body["error"]
    assert set(err) <= {"code", "message", "fields"}
    text = json.dumps(err)
    assert mentions in text, text
    # And nothing was written or launched
    assert table_item_count(aws.table) == 0
    assert aws.run_task_tokens == []
    assert ecs_task_count(aws.cluster_arn) == 0


def test_unknown_route_is_404_and_wrong_method_405(aws: AwsEnv) -> None:
    assert call_api("GET", "/nope").status == 404
    reply = call_api("DELETE", "/jobs")
    assert (reply.status, reply.headers.get("Allow")) == (405, "GET, POST"), reply
    assert reply.body["error"]["code"] == "method_not_allowed"
    put = call_api("PUT", "/jobs/job-x")
    assert (put.status, put.headers.get("Allow")) == (405, "GET"), put


def test_list_limit_out_of_range_is_422(aws: AwsEnv) -> None:
    for limit in ("0", "101", "abc"):
        reply = call_api("GET", "/jobs", query=f"limit={limit}")
        assert reply.status == 422
        assert "limit" in json.dumps(reply.body)
    bad_status = call_api("GET", "/jobs", query="status=DONE")
    assert bad_status.status == 422


def test_caller_scopes_idempotency_keys(aws: AwsEnv) -> None:
    # Two callers with the same key get two jobs.
    from jobtracker_local.apigw import http_event
    from jobtracker_local.handlers import FakeContext, load_handler

    fn = load_handler("functions/create_job", "app.handler")
    body = {"definition": "demo"}
    a = fn(
        http_event("POST", "/jobs", body, {"Idempotency-Key": "k"}, caller="arn:aws:iam::1:user/a"),
        FakeContext(),
    )
    b = fn(
        http_event("POST", "/jobs", body, {"Idempotency-Key": "k"}, caller="arn:aws:iam::1:user/b"),
        FakeContext(),
    )
    assert a["statusCode"] == b["statusCode"] == 201
    assert json.loads(a["body"])["id"] != json.loads(b["body"])["id"]


def test_get_shows_each_failed_attempts_diagnosis_and_cost_and_the_jobs_total(
    aws: AwsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the demo definition sized 0.25 vCPU / 512 MiB (x86), as its task definition is
    from tests.conftest import reset_caches

    definitions = json.loads(aws.env["JOB_DEFINITIONS"])
    definitions["demo"].update(cpu=256, memory=512)
    monkeypatch.setenv("JOB_DEFINITIONS", json.dumps(definitions))
    reset_caches()
    # AND a job whose first attempt exits 2 (retried) and whose second runs out of memory
    job = submit({"definition": "demo", "retry": {"backoff": {"base_seconds": 0}}}).body
    for fixture in ("task_running", "task_stopped_exit_2"):
        invoke("functions/on_task_state", job_event(job, fixture, aws.cluster_arn))
    drain(aws.retry_queue_url)
    drain(aws.launch_queue_url)
    relaunched = call_api("GET", f"/jobs/{job['id']}").body
    invoke("functions/on_task_state", job_event(relaunched, "task_stopped_oom", aws.cluster_arn, 2))
    drain(aws.retry_queue_url)
    # WHEN the job is read
    reply = call_api("GET", f"/jobs/{job['id']}")
    # THEN it FAILED, and each attempt says what to do about it
    assert reply.status == 200 and reply.body["status"] == "FAILED", reply.body
    first, second = reply.body["attempts"]
    assert first["diagnosis"].startswith("The job exited 2"), first["diagnosis"]
    assert first["diagnosis"].endswith("; retried."), first["diagnosis"]
    assert "raise the definition's memory" in second["diagnosis"], second["diagnosis"]
    # AND each attempt (63.782 s, billed 64 s) costs 64/3600 h x (0.25 x $0.04048 + 0.5 x
    # $0.004445), by hand $0.000219
    assert first["cost_usd"] == second["cost_usd"] == 0.000219, (first, second)
    # AND the job's total is their sum
    assert reply.body["cost_usd"] == 0.000439, reply.body["cost_usd"]

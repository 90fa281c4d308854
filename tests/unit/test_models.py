"""Unit: validation of submissions, policies and configuration; model conversions."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from jobtracker.adapters.records import (
    attempt_from,
    attempt_map,
    item_size,
    job_from_image,
    job_from_item,
    job_item,
    to_wire,
)
from jobtracker.config import ConfigError, load_settings
from jobtracker.core.checks import Invalid
from jobtracker.core.domain import (
    Attempt,
    ContainerState,
    Job,
    JobSpec,
    JobStatus,
    client_token,
    new_job_id,
)
from jobtracker.core.policy import RetryOverrides, RetryRule, default_policy
from jobtracker.core.submission import Submission
from jobtracker.edge.api_models import JobSubmission
from jobtracker.edge.views import job_view, to_json
from tests.fakes import DEFINITIONS, settings


def contract_errors(data: dict[str, object]) -> list[str]:
    """The fields the published contract (edge/api_models.py, pydantic) finds wrong."""
    with pytest.raises(ValidationError) as info:
        JobSubmission.model_validate(data)
    return [".".join(str(p) for p in e["loc"]) for e in info.value.errors()]


def runtime_errors(data: dict[str, object]) -> list[str]:
    """The field the API functions' own check (core/submission.py) finds wrong."""
    with pytest.raises(Invalid) as info:
        Submission.from_dict(data)
    return [info.value.field]


# The API checks a body with the core's model and documents it with pydantic's: both must
# refuse the same bodies, naming the same field.
CHECKS = pytest.mark.parametrize("errors_of", [contract_errors, runtime_errors])


def test_minimal_submission_is_valid_to_the_contract_and_the_runtime_check() -> None:
    contract = JobSubmission.model_validate({"definition": "demo"})
    runtime = Submission.from_dict({"definition": "demo"})
    for sub in (contract, runtime):
        assert sub.parameters == {} and sub.environment == {} and sub.command is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "definition"),
        ({"definition": ""}, "definition"),
        ({"definition": "a" * 65}, "definition"),
        ({"definition": "demo", "extra": 1}, "extra"),
        ({"definition": "demo", "environment": {"JOB_X": "1"}}, "environment"),
        ({"definition": "demo", "environment": {"ecs_agent": "1"}}, "environment"),
        ({"definition": "demo", "environment": {"A-B": "1"}}, "environment"),
        ({"definition": "demo", "environment": {f"V{i}": "x" for i in range(51)}}, "environment"),
        ({"definition": "demo", "command": ["x" * 5000]}, "command.0"),
        ({"definition": "demo", "command": ["x"] * 65}, "command"),
        ({"definition": "demo", "timeout_seconds": -1}, "timeout_seconds"),
        ({"definition": "demo", "start_timeout_seconds": 0}, "start_timeout_seconds"),
        ({"definition": "demo", "tags": {"": "x"}}, "tags"),
        ({"definition": "demo", "tags": {"jobtracker:job-id": "x"}}, "tags"),
        ({"definition": "demo", "tags": {"k": "bad\\char"}}, "tags"),
        ({"definition": "demo", "retry": {"max_uncounted": 21}}, "retry.max_uncounted"),
        (
            {"definition": "demo", "retry": {"backoff": {"cap_seconds": -1}}},
            "retry.backoff.cap_seconds",
        ),
        ({"definition": "demo", "retry": {"backoff": {"jitter": "some"}}}, "retry.backoff.jitter"),
        ({"definition": "demo", "retry": {"rules": [{"action": "FAIL"}]}}, "retry.rules.0"),
        ({"definition": "demo", "retry": {"unknown": 1}}, "retry.unknown"),
        ({"definition": "demo\n"}, "definition"),
        ({"definition": "demo", "timeout_seconds": "1e3"}, "timeout_seconds"),
        ({"definition": "demo", "timeout_seconds": "\u0663\u0660"}, "timeout_seconds"),
        (
            {"definition": "demo", "retry": {"backoff": {"factor": "\u0662"}}},
            "retry.backoff.factor",
        ),
        ({"definition": "demo", "retry": {"replace_default_rules": " true"}}, "retry"),
    ],
)
@CHECKS
def test_invalid_submission_names_the_field(
    errors_of: Callable[[dict[str, object]], list[str]], data: dict[str, object], field: str
) -> None:
    found = errors_of(data)
    assert any(loc.startswith(field) for loc in found), found


@pytest.mark.parametrize(
    "data",
    [
        {"definition": "demo", "timeout_seconds": "60"},
        {"definition": "demo", "timeout_seconds": "60.0"},
        {"definition": "demo", "timeout_seconds": 60.0},
        {"definition": "demo", "retry": {"replace_default_rules": 1.0}},
        {"definition": "demo", "retry": {"replace_default_rules": "yes"}},
        {"definition": "demo", "retry": {"backoff": {"factor": "1.5"}}},
        {"definition": "demo", "retry": None, "command": None},
    ],
)
def test_the_contract_and_the_runtime_check_take_the_same_lax_values(
    data: dict[str, object],
) -> None:
    # GIVEN a body pydantic's lax mode takes; WHEN both models read it THEN both take it
    contract = JobSubmission.model_validate(data).to_core()
    runtime = Submission.from_dict(data)
    assert contract == runtime, (contract, runtime)


def test_overrides_prepend_rules_and_keep_defaults_unless_replaced() -> None:
    base = default_policy()
    mine = RetryRule(exit_codes=[3], action="RETRY")
    merged = base.with_overrides(RetryOverrides(max_attempts=5, rules=[mine]))
    assert merged.max_attempts == 5
    assert merged.rules[0] == mine and len(merged.rules) == len(base.rules) + 1
    only = base.with_overrides(RetryOverrides(rules=[mine], replace_default_rules=True))
    assert only.rules == [mine]
    assert base.with_overrides(None) == base


def test_settings_reject_bad_configuration() -> None:
    with pytest.raises(ConfigError):
        load_settings({"TABLE_NAME": "", "JOB_DEFINITIONS": DEFINITIONS})
    with pytest.raises(ConfigError):
        load_settings({"TABLE_NAME": "t", "JOB_DEFINITIONS": '{"demo": {"container": "w"}}'})
    settings = load_settings(
        {"TABLE_NAME": "t", "JOB_DEFINITIONS": DEFINITIONS, "BACKOFF_SCALE": "0.01"}
    )
    assert settings.job_definitions["demo"].subnets == ["subnet-1", "subnet-2"]
    assert settings.backoff_scale == 0.01


def test_default_retry_policy_can_be_configured() -> None:
    settings = load_settings(
        {
            "TABLE_NAME": "t",
            "JOB_DEFINITIONS": DEFINITIONS,
            "DEFAULT_RETRY_POLICY": '{"max_attempts": 7}',
        }
    )
    assert settings.default_retry.max_attempts == 7
    assert settings.default_retry.rules  # the default rules are kept


def test_job_ids_are_valid_started_by_and_sortable() -> None:
    ids = [new_job_id() for _ in range(50)]
    assert all(len(i) <= 128 and all(c.isalnum() or c in "-_/" for c in i) for i in ids)
    assert len(set(ids)) == 50


def test_client_token_fits_64_chars_for_any_id() -> None:
    assert client_token("job-abc", 3) == "job-abc-a3"
    long = client_token("x" * 200, 10)
    assert len(long) <= 64 and long.endswith("-a10")
    assert client_token("x" * 200, 10) == long  # deterministic: a retried launch reattaches
    assert all(33 <= ord(c) <= 126 for c in long)


def _job() -> Job:
    job = Job(
        job_id="job-1",
        spec=JobSpec(
            definition="demo",
            parameters={"a": [1, 2]},
            tags={"t": "v"},
            retry={"max_attempts": 5},
        ),
        status=JobStatus.RUNNING,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:01.000Z",
        attempt=2,
        caller="arn:aws:iam::1:user/u",
        schedule_name="nightly",
    )
    job.attempts[1] = Attempt(
        number=1,
        client_token="job-1-a1",
        task_arn="arn:t1",
        version=5,
        last_status="STOPPED",
        containers=[ContainerState(name="worker", exit_code=2, reason=None)],
        outcome="retry",
        rule="retryable-exit-2",
        history={
            "v00000005": {
                "status": "STOPPED",
                "version": 5,
                "at": "t",
                "desired_status": "STOPPED",
                "stop_code": "EssentialContainerExited",
                "source": "event",
            }
        },
    )
    job.attempts[2] = Attempt(number=2, client_token="job-1-a2", task_arn="arn:t2", version=3)
    job.uncounted = 1
    return job


def test_job_round_trips_through_the_table_items() -> None:
    # GIVEN a job on its second attempt
    job = _job()
    # WHEN its hot item and its first attempt's archive are written and read back
    item = job_item(job)
    archived = {1: attempt_from("job-1", 1, attempt_map(job.attempts[1]))}
    back = job_from_item(item, archived)
    # THEN nothing is lost, and the hot item holds only the current attempt
    assert back == job
    assert item["gx"].startswith("ACTIVE#") and item["c"] == job.created_at
    assert "t1" not in str(item["a"]), "an earlier attempt in the hot item"


def test_job_from_stream_image_and_ignores_other_items() -> None:
    job = _job()
    image = {k: to_wire(v) for k, v in job_item(job).items()}
    current_only = _job()
    del current_only.attempts[1]
    assert job_from_image(image) == current_only
    assert job_from_image({"pk": {"S": "idem#x"}, "k": {"S": "I"}}) is None
    assert job_from_image(None) is None


def test_defaults_are_not_stored_in_the_job_item() -> None:
    # GIVEN a job submitted with every default
    job = Job(
        job_id="job-01kbxyzabcdefghjkmnpqrstvw",
        spec=JobSpec(definition="demo"),
        status=JobStatus.PENDING,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        caller="arn:aws:iam::123456789012:user/alice",
    )
    job.attempts[1] = Attempt(number=1, client_token="job-1-a1", created_at=job.created_at)
    # THEN its item holds no spec and no retry policy, and is small
    item = job_item(job)
    assert "p" not in item, "a default spec was copied into the item"
    assert item_size(item) < 400, item_size(item)


def test_job_view_lists_attempts_in_order_with_history() -> None:
    view = job_view(_job(), settings())
    data = json.loads(to_json(view))
    assert [a["number"] for a in data["attempts"]] == [1, 2]
    assert data["attempts"][0]["history"][0]["status"] == "STOPPED"
    assert data["attempts"][0]["containers"] == [{"name": "worker", "exit_code": 2, "reason": None}]
    assert data["schedule"] == "nightly"


def test_notify_statuses_default_to_terminal_and_accept_all_or_a_list() -> None:
    base = {"TABLE_NAME": "t", "JOB_DEFINITIONS": DEFINITIONS}
    assert load_settings(base).notify_statuses == {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"}
    assert "PENDING" in load_settings({**base, "NOTIFY_STATUSES": "ALL"}).notify_statuses
    picked = load_settings({**base, "NOTIFY_STATUSES": "running, failed"}).notify_statuses
    assert picked == {"RUNNING", "FAILED"}
    with pytest.raises(ConfigError, match="NOTIFY_STATUSES"):
        load_settings({**base, "NOTIFY_STATUSES": "RUNNING,DONE"})

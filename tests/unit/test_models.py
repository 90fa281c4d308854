"""Unit: validation of submissions, policies and configuration; model conversions."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from jobtracker.adapters.records import (
    attempt_from,
    attempt_map,
    item_size,
    job_from_image,
    job_from_record,
    job_item,
    job_record,
)
from jobtracker.config import ConfigError, load_settings
from jobtracker.core.domain import (
    TERMINAL_STATUSES,
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
from jobtracker.edge.api_models import JobSubmission, field_errors
from jobtracker.edge.views import job_view
from tests.fakes import DEFINITIONS, settings


def contract_errors(data: dict[str, object]) -> list[tuple[str, str]]:
    """(field, message) of each problem the API's model (edge/api_models.py) finds."""
    with pytest.raises(ValidationError) as info:
        JobSubmission.model_validate(data)
    return [(e["field"], e["message"]) for e in field_errors(info.value)]


def test_minimal_submission_is_valid_and_takes_the_defaults() -> None:
    sub = JobSubmission.model_validate({"definition": "demo"}).to_core()
    assert (sub.parameters, sub.environment, sub.command) == ({}, {}, None), sub


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({}, "definition", "field required"),
        ({"definition": ""}, "definition", "should match pattern"),
        ({"definition": "a" * 65}, "definition", "should match pattern"),
        ({"definition": "demo", "extra": 1}, "extra", "unknown field"),
        ({"definition": "demo", "environment": {"JOB_X": "1"}}, "environment", "is reserved"),
        ({"definition": "demo", "environment": {"ecs_agent": "1"}}, "environment", "is reserved"),
        ({"definition": "demo", "environment": {"A-B": "1"}}, "environment", "invalid name"),
        (
            {"definition": "demo", "environment": {f"V{i}": "x" for i in range(51)}},
            "environment",
            "at most 50",
        ),
        ({"definition": "demo", "command": ["x" * 5000]}, "command.0", "at most 4096"),
        ({"definition": "demo", "command": ["x"] * 65}, "command", "at most 64 items"),
        (
            {"definition": "demo", "timeout_seconds": -1},
            "timeout_seconds",
            "greater than or equal to 1",
        ),
        (
            {"definition": "demo", "start_timeout_seconds": 0},
            "start_timeout_seconds",
            "greater than or equal to 1",
        ),
        ({"definition": "demo", "tags": {"": "x"}}, "tags", "1-128 characters"),
        ({"definition": "demo", "tags": {"jobtracker:job-id": "x"}}, "tags", "reserved prefix"),
        ({"definition": "demo", "tags": {"k": "bad\\char"}}, "tags", "only letters"),
        (
            {"definition": "demo", "retry": {"max_uncounted": 21}},
            "retry.max_uncounted",
            "less than or equal to 20",
        ),
        (
            {"definition": "demo", "retry": {"backoff": {"cap_seconds": -1}}},
            "retry.backoff.cap_seconds",
            "greater than or equal to 0",
        ),
        (
            {"definition": "demo", "retry": {"backoff": {"jitter": "some"}}},
            "retry.backoff.jitter",
            "'full' or 'none'",
        ),
        (
            {"definition": "demo", "retry": {"rules": [{"action": "FAIL"}]}},
            "retry.rules.0",
            "needs at least one of",
        ),
        ({"definition": "demo", "retry": {"unknown": 1}}, "retry.unknown", "unknown field"),
        ({"definition": "demo\n"}, "definition", "should match pattern"),
        ({"definition": "demo", "timeout_seconds": "1e3"}, "timeout_seconds", "valid integer"),
        (
            {"definition": "demo", "timeout_seconds": "\u0663\u0660"},
            "timeout_seconds",
            "valid integer",
        ),
        (
            {"definition": "demo", "retry": {"backoff": {"factor": "\u0662"}}},
            "retry.backoff.factor",
            "valid number",
        ),
        (
            {"definition": "demo", "retry": {"replace_default_rules": " true"}},
            "retry.replace_default_rules",
            "valid boolean",
        ),
    ],
)
def test_invalid_submission_names_the_field_and_the_problem(
    data: dict[str, object], field: str, problem: str
) -> None:
    found = contract_errors(data)
    assert any(name == field and problem in message for name, message in found), found


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
def test_lax_values_are_taken_as_pydantic_takes_them(data: dict[str, object]) -> None:
    # GIVEN a body pydantic's lax mode takes; WHEN the model reads it THEN it is a submission
    assert isinstance(JobSubmission.model_validate(data).to_core(), Submission)


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


SHARED = '{"container": "worker", "cluster": "arn:c", "subnets": "s-1", "architecture": "ARM64"}'


def test_each_definition_takes_the_shared_defaults_and_overrides_what_is_its_own() -> None:
    # GIVEN shared defaults and two definitions, one with a container of its own
    definitions = (
        '{"a": {"task_definition": "td-a"}, "b": {"task_definition": "td-b", "container": "x"}}'
    )
    # WHEN the settings are read
    found = load_settings(
        {"TABLE_NAME": "t", "JOB_DEFAULTS": SHARED, "JOB_DEFINITIONS": definitions}
    ).job_definitions
    # THEN each has the shared cluster, network and architecture, and b its own container
    assert (found["a"].cluster, found["a"].subnets, found["a"].architecture) == (
        "arn:c",
        ["s-1"],
        "ARM64",
    )
    assert found["a"].container == "worker" and found["b"].container == "x", found


def test_a_definition_missing_what_no_default_gives_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"JOB_DEFINITIONS: a\.task_definition: field required"):
        load_settings({"TABLE_NAME": "t", "JOB_DEFAULTS": SHARED, "JOB_DEFINITIONS": '{"a": {}}'})


def test_every_default_rule_is_valid_to_the_apis_retry_model() -> None:
    # GIVEN the default rules, trusted at run time WHEN each is checked by the API's model
    from jobtracker.core.policy import DEFAULT_RULES
    from jobtracker.edge.api_models import RetryRule as RuleModel

    # THEN each is valid and converts to the rule the default policy holds
    checked = [RuleModel.model_validate(rule).to_core() for rule in DEFAULT_RULES]
    assert checked == default_policy().rules


def test_retry_settings_are_checked_by_the_apis_retry_model() -> None:
    # WHEN a deployment's default policy breaks a rule of the API's retry model
    with pytest.raises(ConfigError) as info:
        load_settings(
            {
                "TABLE_NAME": "t",
                "JOB_DEFINITIONS": DEFINITIONS,
                "DEFAULT_RETRY_POLICY": '{"max_attempts": 11}',
            }
        )
    # THEN the configuration is refused, naming the variable, the field and the problem
    assert "DEFAULT_RETRY_POLICY: max_attempts: Input should be less than or equal to 10" in str(
        info.value
    ), info.value


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
    back = job_from_record(job_record(job), archived)
    # THEN nothing is lost, and the hot item holds only the current attempt
    assert back == job
    assert item["gx"].startswith("ACTIVE#") and item["c"] == job.created_at
    assert "t1" not in str(item["a"]), "an earlier attempt in the hot item"


def test_job_from_stream_image_and_ignores_other_items() -> None:
    job = _job()
    image = job_record(job).serialize()
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
    size = item_size(job_record(job).serialize())
    assert size < 400, size


def test_job_view_lists_attempts_in_order_with_history() -> None:
    view = job_view(_job(), settings())
    data = json.loads(view.model_dump_json())
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


def test_the_templates_default_notify_statuses_are_the_terminal_ones() -> None:
    # GIVEN the template's NotifyStatuses default, as a deployment passes it
    from jobtracker_local.template import load

    default = load()["Parameters"]["NotifyStatuses"]["Default"]
    # WHEN the settings read it THEN they are every status a job ends in, from the domain's list
    settings_read = load_settings(
        {"TABLE_NAME": "t", "JOB_DEFINITIONS": DEFINITIONS, "NOTIFY_STATUSES": default}
    )
    assert settings_read.notify_statuses == {s.value for s in TERMINAL_STATUSES}, default


def test_shared_defaults_that_are_no_object_are_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="JOB_DEFAULTS: must be an object"):
        load_settings({"TABLE_NAME": "t", "JOB_DEFAULTS": "[]", "JOB_DEFINITIONS": DEFINITIONS})

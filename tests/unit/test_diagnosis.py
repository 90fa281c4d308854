"""Unit: every failed attempt carries one line of what to do, from what decided it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobtracker.core import lifecycle
from jobtracker.core.diagnosis import DIAGNOSES, diagnose
from jobtracker.core.domain import (
    Attempt,
    Job,
    JobSpec,
    JobStatus,
    LaunchFailure,
    StopRequest,
    TaskState,
)
from jobtracker.core.policy import DEFAULT_RULES
from jobtracker.edge.ecs_event import correlate, parse_event
from tests.conftest import load_event
from tests.fakes import settings

NOW = datetime(2026, 11, 20, 10, 2, tzinfo=UTC)
RULE_NAMES = [str(rule.get("name")) for rule in DEFAULT_RULES]
# What the tracker decides, or how it tells apart failures no rule matches.
SYSTEM_KEYS = {
    "no-matching-rule",
    "exit-code",
    "stopped-outside",
    "timed-out",
    "cancelled",
    "queue-timeout",
    "launch-failures-exhausted",
    "launch-failed",
}


def running_job(
    retry: dict[str, Any] | None = None, stop_request: StopRequest | None = None
) -> Job:
    job = Job(
        job_id="job-1",
        spec=JobSpec(definition="demo", retry=retry or {}),
        status=JobStatus.CANCELLING if stop_request == StopRequest.CANCEL else JobStatus.RUNNING,
        created_at="2026-11-20T09:59:00.000Z",
        updated_at="2026-11-20T10:00:16.218Z",
        stop_request=stop_request,
    )
    job.attempts[1] = lifecycle.new_attempt(job.job_id, 1, NOW)
    job.attempts[1].task_arn = "arn:aws:ecs:us-east-1:123456789012:task/jobtracker/abc"
    return job


def ended_attempt(
    state: TaskState,
    retry: dict[str, Any] | None = None,
    stop_request: StopRequest | None = None,
) -> Attempt:
    """The attempt as the tracker leaves it: the STOPPED state applied, the policy's decision
    (if one is due) applied."""
    job = running_job(retry, stop_request)
    config = settings()
    lifecycle.apply_task_state(job, 1, state, NOW, config.job_definitions["demo"])
    decided = lifecycle.decide_retry(job, 1, NOW, config, rand=lambda: 0.0)
    if decided is not None:
        decided.change.apply_to(job)
    return job.attempts[1]


def from_event(fixture: str, **kwargs: Any) -> Attempt:
    return ended_attempt(correlate(parse_event(load_event(fixture))).state, **kwargs)


# ---- the table covers every rule -------------------------------------------------------------


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_every_default_retry_rule_has_a_diagnosis(rule: str) -> None:
    # GIVEN a rule of the default retry policy
    # THEN the diagnosis table has a line for it
    assert DIAGNOSES.get(rule, "").strip(), (
        f"default retry rule {rule!r} has no diagnosis: add one to core/diagnosis.py DIAGNOSES"
    )


def test_the_table_holds_no_line_for_a_rule_that_no_longer_exists() -> None:
    # GIVEN the diagnosis table
    # THEN each entry is a default rule's or one the tracker itself produces
    stale = set(DIAGNOSES) - set(RULE_NAMES) - SYSTEM_KEYS
    assert not stale, f"diagnoses for rules that are not in DEFAULT_RULES: {sorted(stale)}"


# ---- failures the retry policy decides --------------------------------------------------------


def test_out_of_memory_says_to_raise_the_definitions_memory() -> None:
    # GIVEN an attempt whose container was killed for memory (the policy FAILs it)
    attempt = from_event("task_stopped_oom")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN the line is the OOM one: raise the memory
    assert attempt.rule == "oom", f"the fixture was decided by {attempt.rule!r}, not oom"
    assert diagnosis == DIAGNOSES["oom"] + ".", f"OOM diagnosed as {diagnosis!r}"
    assert "raise the definition's memory" in diagnosis


def test_image_not_found_says_to_check_the_image_name() -> None:
    # GIVEN an attempt whose image does not exist
    attempt = from_event("task_stopped_image_not_found")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN the line sends the reader to the image name in the task definition
    assert diagnosis == DIAGNOSES["image-not-found"] + ".", f"diagnosed as {diagnosis!r}"
    assert "image name" in diagnosis


def test_resource_initialization_error_points_at_secrets_log_group_and_network() -> None:
    # GIVEN an attempt stopped by ResourceInitializationError (retried uncounted)
    attempt = from_event("task_stopped_resource_init")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt) or ""
    # THEN the line names secrets, the log group and the subnet's routes, and says it was retried
    for words in ("secrets", "log group", "subnet", "retried uncounted"):
        assert words in diagnosis, f"{words!r} missing from {diagnosis!r}"


def test_spot_interruption_says_interrupted_and_retried_uncounted() -> None:
    # GIVEN an attempt Fargate Spot interrupted
    attempt = from_event("task_stopped_spot")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN it is the Spot line, followed by what happened: retried without counting
    expected = DIAGNOSES["spot-interruption"] + "; retried uncounted."
    assert diagnosis == expected, f"Spot interruption diagnosed as {diagnosis!r}"


def test_exit_code_2_with_no_attempts_left_says_retries_are_exhausted() -> None:
    # GIVEN a job allowed one attempt, which exits 2 (worth retrying)
    attempt = from_event("task_stopped_exit_2", retry={"max_attempts": 1})
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN the exit-2 line says no retry was left
    assert attempt.rule == "retryable-exit-2+exhausted", f"decided by {attempt.rule!r}"
    expected = DIAGNOSES["retryable-exit-2"] + "; retries exhausted (max_attempts reached)."
    assert diagnosis == expected, f"exhausted exit 2 diagnosed as {diagnosis!r}"


def test_exit_code_2_with_attempts_left_says_retried() -> None:
    # GIVEN a job with attempts left whose first attempt exits 2
    attempt = from_event("task_stopped_exit_2")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN the exit-2 line says it was retried
    assert diagnosis == DIAGNOSES["retryable-exit-2"] + "; retried.", f"got {diagnosis!r}"


def test_noise_past_its_own_bound_says_the_retry_counted() -> None:
    # GIVEN a job with no uncounted retries allowed, interrupted by Spot
    attempt = from_event("task_stopped_spot", retry={"max_uncounted": 0})
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt) or ""
    # THEN it says the retry was charged to max_attempts
    assert attempt.rule == "spot-interruption+uncounted-exhausted", f"got {attempt.rule!r}"
    assert diagnosis.startswith(DIAGNOSES["spot-interruption"]), diagnosis
    assert "max_uncounted" in diagnosis, f"no word of the uncounted bound in {diagnosis!r}"


def test_a_non_zero_exit_no_rule_knows_says_to_read_the_log() -> None:
    # GIVEN an attempt that exits 1 (no rule matches: the job fails)
    attempt = from_event("task_stopped_exit_1")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN it is the application's exit code line, not the generic one
    assert attempt.rule == "no-matching-rule", f"decided by {attempt.rule!r}"
    assert diagnosis == DIAGNOSES["exit-code"] + ".", f"exit 1 diagnosed as {diagnosis!r}"


def test_no_exit_code_and_no_matching_rule_says_to_read_the_stopped_reason() -> None:
    # GIVEN an attempt that stopped without an exit code nor a reason any rule knows
    attempt = from_event("task_stopped_no_exit_code")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN it is the no-matching-rule line
    assert attempt.rule == "no-matching-rule", f"decided by {attempt.rule!r}"
    assert diagnosis == DIAGNOSES["no-matching-rule"] + ".", f"diagnosed as {diagnosis!r}"


def test_a_task_stopped_outside_jobtracker_says_so() -> None:
    # GIVEN an attempt an operator stopped from the console (UserInitiated, exit 143)
    attempt = from_event("task_stopped_user_initiated_other")
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN it says it was stopped outside jobtracker, not that the job's exit code failed it
    assert diagnosis == DIAGNOSES["stopped-outside"] + ".", f"diagnosed as {diagnosis!r}"


def test_a_jobs_own_rule_is_diagnosed_by_the_default_rule_matching_the_failure() -> None:
    # GIVEN a job whose own rule retries out-of-memory failures
    retry = {"rules": [{"name": "retry-my-oom", "reason": "*OutOfMemory*", "action": "RETRY"}]}
    attempt = from_event("task_stopped_oom", retry=retry)
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN it is the OOM line, and says it was retried
    assert attempt.rule == "retry-my-oom", f"decided by {attempt.rule!r}"
    assert diagnosis == DIAGNOSES["oom"] + "; retried.", f"diagnosed as {diagnosis!r}"


def test_a_lost_task_says_ecs_no_longer_knows_it() -> None:
    # GIVEN an attempt the reconciler found lost (ECS answered MISSING), as it records it
    lost = TaskState(
        task_arn="arn:aws:ecs:us-east-1:123456789012:task/jobtracker/abc",
        last_status="STOPPED",
        version=5,
        desired_status="STOPPED",
        stopped_reason=lifecycle.LOST_REASON,
        observed_at="2026-11-20T11:30:00.000Z",
        source="reconciler",
    )
    attempt = ended_attempt(lost)
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN it is the task-lost line, retried uncounted
    assert diagnosis == DIAGNOSES["task-lost"] + "; retried uncounted.", f"got {diagnosis!r}"


# ---- what the tracker decides itself -----------------------------------------------------------


def test_a_timed_out_attempt_says_to_raise_the_timeout() -> None:
    # GIVEN an attempt the reconciler stopped for its timeout
    attempt = from_event("task_stopped_user_initiated", stop_request=StopRequest.TIMEOUT)
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt) or ""
    # THEN it is the timeout line
    assert attempt.outcome == "timed_out", f"outcome {attempt.outcome!r}"
    assert diagnosis == DIAGNOSES["timed-out"] + ".", f"timeout diagnosed as {diagnosis!r}"
    assert "timeout_seconds" in diagnosis


def test_a_cancelled_attempt_says_it_was_cancelled() -> None:
    # GIVEN an attempt stopped by a cancel
    attempt = from_event("task_stopped_user_initiated", stop_request=StopRequest.CANCEL)
    # WHEN it is diagnosed
    diagnosis = diagnose(attempt)
    # THEN it is the cancel line, not a failure's
    assert attempt.outcome == "cancelled", f"outcome {attempt.outcome!r}"
    assert diagnosis == DIAGNOSES["cancelled"] + ".", f"cancel diagnosed as {diagnosis!r}"


@pytest.mark.parametrize(
    ("failure", "key"),
    [
        (LaunchFailure.FATAL, "launch-failed"),
        (LaunchFailure.RETRY, "launch-failures-exhausted"),
        (LaunchFailure.WAIT, "queue-timeout"),
    ],
)
def test_a_launch_given_up_is_diagnosed_by_why(failure: LaunchFailure, key: str) -> None:
    # GIVEN a PENDING job whose launch fails for the last time (its queue timeout is over, its
    # service-error tries are spent, or ECS refused the request)
    job = running_job()
    job.status = JobStatus.PENDING
    job.attempts[1].task_arn = None
    job.attempts[1].created_at = "2026-11-20T10:01:00.000Z"  # waiting for a minute
    job.spec.queue_timeout_seconds = 30
    job.launch_failures = settings().max_launch_failures - 1
    planned = lifecycle.record_launch_failure(
        job, 1, "ClientException: no such task definition", failure, NOW, settings()
    )
    assert planned is not None and planned[1] is None, "the launch was not given up"
    planned[0].apply_to(job)
    # WHEN its attempt is diagnosed
    diagnosis = diagnose(job.attempts[1])
    # THEN it is the line for that reason
    assert diagnosis == DIAGNOSES[key] + ".", f"{failure} diagnosed as {diagnosis!r}"


# ---- no diagnosis ----------------------------------------------------------------------------


def test_a_succeeded_attempt_has_no_diagnosis() -> None:
    # GIVEN an attempt whose container exited 0
    attempt = from_event("task_stopped_success")
    # THEN there is nothing to do about it
    assert attempt.outcome == "succeeded", f"outcome {attempt.outcome!r}"
    assert diagnose(attempt) is None


def test_a_running_attempt_has_no_diagnosis() -> None:
    # GIVEN an attempt whose task is RUNNING
    job = running_job()
    state = correlate(parse_event(load_event("task_running"))).state
    lifecycle.apply_task_state(job, 1, state, NOW)
    # THEN there is nothing to diagnose yet
    assert diagnose(job.attempts[1]) is None

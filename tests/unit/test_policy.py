"""Unit: the retry policy on every stop family of ../shared/reference/ecs.md, and backoff."""

from __future__ import annotations

import pytest

from jobtracker.core.domain import Attempt
from jobtracker.core.lifecycle import succeeded
from jobtracker.core.policy import (
    Backoff,
    RetryOverrides,
    RetryRule,
    backoff_seconds,
    decide,
    default_policy,
)
from jobtracker.edge.ecs_event import correlate, parse_event
from tests.conftest import load_event


def stopped_attempt(fixture: str, deciding: tuple[str, ...] = ("worker",)) -> Attempt:
    state = correlate(parse_event(load_event(fixture))).state
    attempt = Attempt(
        number=1,
        client_token="t",
        stop_code=state.stop_code,
        stopped_reason=state.stopped_reason,
        containers=state.containers,
    )
    if any(c.name in deciding for c in attempt.containers):
        for c in attempt.containers:
            c.essential = c.name in deciding
    return attempt


CASES = [
    ("task_stopped_success", None, None),
    ("task_stopped_multi_container", None, None),
    ("task_stopped_exit_2", "RETRY", "retryable-exit-2"),
    ("task_stopped_exit_1", "FAIL", "no-matching-rule"),
    ("task_stopped_multi_container_failed", "FAIL", "no-matching-rule"),
    ("task_stopped_oom", "FAIL", "oom"),
    ("task_stopped_no_exit_code", "FAIL", "no-matching-rule"),
    ("task_stopped_image_pull_timeout", "RETRY_UNCOUNTED", "image-pull-transient"),
    ("task_stopped_image_not_found", "FAIL", "image-not-found"),
    ("task_stopped_resource_init", "RETRY_UNCOUNTED", "resource-init"),
    ("task_stopped_eni_timeout", "RETRY_UNCOUNTED", "eni-timeout"),
    ("task_stopped_ephemeral_timeout", "RETRY_UNCOUNTED", "storage-timeout"),
    ("task_stopped_eni_auth_failure", "RETRY_UNCOUNTED", "eni-auth-failure"),
    ("task_stopped_service_discovery", "RETRY_UNCOUNTED", "service-discovery"),
    ("task_stopped_cannot_start", "RETRY_UNCOUNTED", "cannot-start"),
    ("task_stopped_cannot_create_volume", "RETRY_UNCOUNTED", "cannot-create-volume"),
    ("task_stopped_container_runtime_timeout", "RETRY_UNCOUNTED", "container-runtime-timeout"),
    ("task_stopped_internal_error", "RETRY_UNCOUNTED", "internal-error"),
    ("task_stopped_cannot_stop", "RETRY", "cannot-stop"),
    ("task_stopped_cannot_inspect", "RETRY", "cannot-inspect"),
    ("task_stopped_spot", "RETRY_UNCOUNTED", "spot-interruption"),
    ("task_stopped_termination_notice", "RETRY_UNCOUNTED", "spot-interruption"),
    ("task_stopped_infrastructure_health", "RETRY_UNCOUNTED", "infrastructure-health"),
    ("task_stopped_user_initiated_other", "FAIL", "no-matching-rule"),
    ("task_stopped_service_scheduler", "FAIL", "no-matching-rule"),
    ("task_stopped_unknown_code", "FAIL", "no-matching-rule"),
]


@pytest.mark.parametrize(("fixture", "action", "rule"), CASES, ids=[c[0] for c in CASES])
def test_default_policy_decides_each_stop_family(
    fixture: str, action: str | None, rule: str | None
) -> None:
    # Given a stopped attempt shaped like the real event
    attempt = stopped_attempt(fixture)
    # Then success is exactly "every deciding container exited 0"
    assert succeeded(attempt.containers, attempt.stop_code) is (action is None)
    if action is None:
        return
    # And the first matching default rule decides
    decision = decide(default_policy(), attempt, counted=1, uncounted=0)
    assert (decision.action, decision.rule) == (action, rule)
    assert decision.reason


def test_no_exit_code_is_never_success() -> None:
    attempt = stopped_attempt("task_stopped_no_exit_code")
    assert attempt.containers[0].exit_code is None
    assert not succeeded(attempt.containers, attempt.stop_code)


def test_attempts_are_bounded_by_max_attempts() -> None:
    policy = default_policy().with_overrides(RetryOverrides(max_attempts=3))
    attempt = stopped_attempt("task_stopped_exit_2")
    assert decide(policy, attempt, counted=2, uncounted=0).action == "RETRY"
    final = decide(policy, attempt, counted=3, uncounted=0)
    assert final.action == "FAIL" and final.rule.endswith("+exhausted")


def test_uncounted_retries_have_their_own_bound_then_count() -> None:
    policy = default_policy().with_overrides(RetryOverrides(max_attempts=2, max_uncounted=2))
    spot = stopped_attempt("task_stopped_spot")
    assert decide(policy, spot, counted=1, uncounted=1).action == "RETRY_UNCOUNTED"
    assert decide(policy, spot, counted=1, uncounted=2).action == "RETRY"
    assert decide(policy, spot, counted=2, uncounted=2).action == "FAIL"


def test_user_rules_come_first_and_can_fail_fast() -> None:
    policy = default_policy().with_overrides(
        RetryOverrides(rules=[RetryRule(name="never-retry-2", exit_codes=[2], action="FAIL")])
    )
    decision = decide(policy, stopped_attempt("task_stopped_exit_2"), counted=1, uncounted=0)
    assert (decision.action, decision.rule) == ("FAIL", "never-retry-2")


def test_reason_globs_match_container_reasons_case_insensitively() -> None:
    rule = RetryRule(reason="*outofmemoryerror*", action="RETRY")
    policy = default_policy().with_overrides(
        RetryOverrides(rules=[rule], replace_default_rules=True)
    )
    assert decide(policy, stopped_attempt("task_stopped_oom"), 1, 0).action == "RETRY"


def test_stop_code_rule() -> None:
    rule = RetryRule(stop_codes=["SomethingNew2027"], action="RETRY")
    policy = default_policy().with_overrides(RetryOverrides(rules=[rule]))
    assert decide(policy, stopped_attempt("task_stopped_unknown_code"), 1, 0).action == "RETRY"


def test_backoff_is_exponential_capped_with_full_jitter() -> None:
    b = Backoff(base_seconds=10, factor=3, cap_seconds=100, jitter="none")
    assert [backoff_seconds(b, n) for n in (1, 2, 3, 4)] == [10, 30, 90, 100]
    full = Backoff(base_seconds=10, factor=2, cap_seconds=1000, jitter="full")
    assert backoff_seconds(full, 3, rand=lambda: 0.0) == 0
    assert backoff_seconds(full, 3, rand=lambda: 0.5) == 20
    assert backoff_seconds(full, 3, scale=0.01, rand=lambda: 1.0) == pytest.approx(0.4)
    samples = {round(backoff_seconds(full, 2), 3) for _ in range(50)}
    assert len(samples) > 10 and all(0 <= s <= 20 for s in samples)

"""Retry policy: which failed attempts are worth another try, and how long to wait.

AWS-Batch-like (ordered rules on exit code / stop code / reason glob), plus what Batch lacks:
RETRY_UNCOUNTED for infrastructure noise, full-jitter exponential backoff with a cap, and
"no exit code is never success".
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from jobtracker.core.checks import plain
from jobtracker.core.domain import SPOT_STOP_CODES, Attempt, ContainerState

Action = Literal["RETRY", "FAIL", "RETRY_UNCOUNTED"]
ACTIONS: tuple[Action, ...] = ("RETRY", "FAIL", "RETRY_UNCOUNTED")
Jitter = Literal["full", "none"]
JITTERS: tuple[Jitter, ...] = ("full", "none")

# A policy's limits and defaults: the API's retry model (edge/api_models.py), the one check of
# a policy (a job's overrides, the deployment's settings), applies these.
MIN_ATTEMPTS, MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS = 1, 10, 3
MAX_UNCOUNTED, DEFAULT_MAX_UNCOUNTED = 20, 5
MAX_BACKOFF_BASE_SECONDS, DEFAULT_BACKOFF_BASE_SECONDS = 3600, 30.0
MIN_BACKOFF_FACTOR, MAX_BACKOFF_FACTOR, DEFAULT_BACKOFF_FACTOR = 1, 10, 2.0
MAX_BACKOFF_CAP_SECONDS, DEFAULT_BACKOFF_CAP_SECONDS = 86400, 3600.0
DEFAULT_JITTER: Jitter = "full"
MAX_RULES = 20
MAX_RULE_NAME = 64
MAX_EXIT_CODE = 255  # a process's exit status is one byte
MAX_EXIT_CODES = 50
MAX_STOP_CODE = 64
MAX_STOP_CODES = 20
MAX_REASON = 512
NO_MATCHER = "a rule needs at least one of exit_codes, stop_codes, reason, no_exit_code"


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How long to wait before the next attempt."""

    base_seconds: float = DEFAULT_BACKOFF_BASE_SECONDS
    factor: float = DEFAULT_BACKOFF_FACTOR
    cap_seconds: float = DEFAULT_BACKOFF_CAP_SECONDS
    jitter: Jitter = DEFAULT_JITTER

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backoff:
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class RetryRule:
    """One rule; every matcher given must match. Reason globs are case-insensitive."""

    name: str | None = None
    exit_codes: list[int] | None = None
    no_exit_code: bool | None = None
    stop_codes: list[str] | None = None
    reason: str | None = None
    action: Action

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetryRule:
        return cls(**data)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        parts = []
        if self.exit_codes:
            parts.append("exit_codes=" + ",".join(map(str, self.exit_codes)))
        if self.stop_codes:
            parts.append("stop_codes=" + ",".join(self.stop_codes))
        if self.reason:
            parts.append(f"reason={self.reason}")
        if self.no_exit_code is not None:
            parts.append(f"no_exit_code={self.no_exit_code}")
        return f"{self.action}({' '.join(parts)})"


def has_matcher(
    exit_codes: list[int] | None,
    stop_codes: list[str] | None,
    reason: str | None,
    no_exit_code: bool | None,
) -> bool:
    """A rule must match on something: NO_MATCHER otherwise."""
    return bool(exit_codes) or bool(stop_codes) or reason is not None or no_exit_code is not None


def _nested(data: dict[str, Any]) -> dict[str, Any]:
    """A policy's or overrides' stored (already checked) fields, its parts as their classes."""
    out = dict(data)
    if out.get("backoff") is not None:
        out["backoff"] = Backoff.from_dict(out["backoff"])
    if out.get("rules") is not None:
        out["rules"] = [RetryRule.from_dict(r) for r in out["rules"]]
    return out


@dataclass(frozen=True, kw_only=True)
class RetryOverrides:
    """Per-job overrides from POST /jobs; rules given here are evaluated before the defaults."""

    max_attempts: int | None = None
    max_uncounted: int | None = None
    backoff: Backoff | None = None
    rules: list[RetryRule] | None = None
    replace_default_rules: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetryOverrides:
        """From what a job stores (checked by the API's model when it was submitted)."""
        return cls(**_nested(data))

    def to_dict(self) -> dict[str, Any]:
        """What a job stores: only what differs from the defaults."""
        return plain(self, skip_defaults=True)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """A job's retry rules, attempt limit and backoff."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_uncounted: int = DEFAULT_MAX_UNCOUNTED
    backoff: Backoff = field(default_factory=Backoff)
    rules: list[RetryRule] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetryPolicy:
        return cls(**_nested(data))

    def to_dict(self) -> dict[str, Any]:
        return plain(self)

    def with_overrides(self, overrides: RetryOverrides | None) -> RetryPolicy:
        if overrides is None:
            return replace(self, rules=list(self.rules))
        rules = list(overrides.rules or [])
        if not overrides.replace_default_rules:
            rules += self.rules
        return RetryPolicy(
            max_attempts=overrides.max_attempts or self.max_attempts,
            max_uncounted=(
                overrides.max_uncounted
                if overrides.max_uncounted is not None
                else self.max_uncounted
            ),
            backoff=overrides.backoff or self.backoff,
            rules=rules,
        )


# Defaults distilled from ../shared/reference/ecs.md: community practice (aws-samples, Dagster)
# on which ECS failures are transient. Order matters: the first match decides. Kept as data; a
# unit test checks each rule with the API's retry model (at run time they are trusted).
# Each name has its one-line "what to do" in core/diagnosis.py (a test fails without one).
DEFAULT_RULES: list[dict[str, object]] = [
    {
        "name": "spot-interruption",
        "action": "RETRY_UNCOUNTED",
        "stop_codes": list(SPOT_STOP_CODES),
    },
    {"name": "task-lost", "action": "RETRY_UNCOUNTED", "reason": "jobtracker: task lost*"},
    {"name": "oom", "action": "FAIL", "reason": "*OutOfMemoryError*"},
    {"name": "oom-exit-137", "action": "FAIL", "exit_codes": [137]},
    {"name": "image-not-found", "action": "FAIL", "reason": "CannotPullContainerError*not found*"},
    {"name": "image-access-denied", "action": "FAIL", "reason": "CannotPullContainerError*denied*"},
    {
        "name": "image-pull-transient",
        "action": "RETRY_UNCOUNTED",
        "reason": "CannotPullContainerError*",
    },
    {
        "name": "resource-init",
        "action": "RETRY_UNCOUNTED",
        "reason": "ResourceInitializationError*",
    },
    {
        "name": "container-runtime-timeout",
        "action": "RETRY_UNCOUNTED",
        "reason": "ContainerRuntimeTimeoutError*",
    },
    {"name": "docker-timeout", "action": "RETRY_UNCOUNTED", "reason": "DockerTimeoutError*"},
    {"name": "cannot-start", "action": "RETRY_UNCOUNTED", "reason": "CannotStartContainerError*"},
    {
        "name": "cannot-create-volume",
        "action": "RETRY_UNCOUNTED",
        "reason": "CannotCreateVolumeError*",
    },
    {"name": "internal-error", "action": "RETRY_UNCOUNTED", "reason": "InternalError*"},
    {
        "name": "eni-timeout",
        "action": "RETRY_UNCOUNTED",
        "reason": "Timeout waiting for network interface*",
    },
    {
        "name": "storage-timeout",
        "action": "RETRY_UNCOUNTED",
        "reason": "Timeout waiting for EphemeralStorage*",
    },
    {
        "name": "eni-auth-failure",
        "action": "RETRY_UNCOUNTED",
        "reason": "Unexpected EC2 error*AuthFailure*",
    },
    {
        "name": "service-discovery",
        "action": "RETRY_UNCOUNTED",
        "reason": "*Service Discovery instance*",
    },
    {
        "name": "infrastructure-health",
        "action": "RETRY_UNCOUNTED",
        "stop_codes": ["InfrastructureHealth"],
    },
    {"name": "cannot-stop", "action": "RETRY", "reason": "CannotStopContainerError*"},
    {"name": "cannot-inspect", "action": "RETRY", "reason": "CannotInspectContainerError*"},
    {"name": "start-deadline", "action": "RETRY", "reason": "jobtracker: start deadline*"},
    {"name": "failed-to-start", "action": "RETRY", "stop_codes": ["TaskFailedToStart"]},
    {"name": "retryable-exit-2", "action": "RETRY", "exit_codes": [2]},
]


def default_policy() -> RetryPolicy:
    return RetryPolicy.from_dict({"rules": DEFAULT_RULES})


@dataclass(frozen=True)
class Decision:
    """What the retry policy decided about a failed attempt, and why."""

    action: Action
    rule: str
    reason: str


def _reasons(attempt: Attempt) -> list[str]:
    reasons = [attempt.stopped_reason or ""]
    reasons += [c.reason for c in attempt.containers if c.reason]
    return reasons


def deciding_containers(attempt: Attempt) -> list[ContainerState]:
    essential = [c for c in attempt.containers if c.essential]
    return essential or attempt.containers


def _matches(rule: RetryRule, attempt: Attempt) -> bool:
    containers = deciding_containers(attempt)
    if rule.exit_codes and not any(c.exit_code in rule.exit_codes for c in containers):
        return False
    if rule.no_exit_code is not None:
        missing = not containers or any(c.exit_code is None for c in containers)
        if missing != rule.no_exit_code:
            return False
    if rule.stop_codes and attempt.stop_code not in rule.stop_codes:
        return False
    if rule.reason is not None:
        pattern = rule.reason.lower()
        if not any(fnmatch.fnmatchcase(r.lower(), pattern) for r in _reasons(attempt)):
            return False
    return True


def failure_reason(attempt: Attempt) -> str:
    parts = []
    if attempt.stop_code:
        parts.append(attempt.stop_code)
    if attempt.stopped_reason:
        parts.append(attempt.stopped_reason)
    for c in deciding_containers(attempt):
        code = "no exit code" if c.exit_code is None else f"exit code {c.exit_code}"
        parts.append(f"{c.name}: {code}" + (f" ({c.reason})" if c.reason else ""))
    return "; ".join(parts) or "unknown failure"


def decide(policy: RetryPolicy, attempt: Attempt, counted: int, uncounted: int) -> Decision:
    """Decide what follows a failed attempt.

    counted / uncounted: attempts made so far that were (not) charged to max_attempts,
    this one included as it was launched.
    """
    reason = failure_reason(attempt)
    for rule in policy.rules:
        if not _matches(rule, attempt):
            continue
        if rule.action == "FAIL":
            return Decision("FAIL", rule.label, reason)
        if rule.action == "RETRY_UNCOUNTED":
            if uncounted < policy.max_uncounted:
                return Decision("RETRY_UNCOUNTED", rule.label, reason)
            # Noise has its own bound; beyond it the attempt counts like any other.
            if counted < policy.max_attempts:
                return Decision("RETRY", rule.label + "+uncounted-exhausted", reason)
            return Decision("FAIL", rule.label + "+exhausted", reason)
        if counted < policy.max_attempts:
            return Decision("RETRY", rule.label, reason)
        return Decision("FAIL", rule.label + "+exhausted", reason)
    return Decision("FAIL", "no-matching-rule", reason)


def backoff_seconds(
    backoff: Backoff,
    retry_number: int,
    scale: float = 1.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Wait before retry number `retry_number` (1 = first retry): full jitter, capped."""
    ceiling = min(backoff.cap_seconds, backoff.base_seconds * backoff.factor ** (retry_number - 1))
    wait = ceiling * rand() if backoff.jitter == "full" else ceiling
    return max(0.0, wait * scale)

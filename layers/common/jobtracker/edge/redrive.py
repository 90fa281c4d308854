"""Redrive: hand the events and schedule ticks that ended in the event dead-letter queue back
to their handlers, once whatever made them fail is fixed.

Two shapes land there: an ECS event EventBridge could not deliver (the event itself), and an
invocation Lambda gave up on after its retries (its on-failure destination wraps the event as
`requestPayload`). A message is deleted only once its handler took it; one that fails again
stays, for the next redrive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from jobtracker.core.checks import Invalid
from jobtracker.edge.task_events import handle_task_event
from jobtracker.observability import count, logger
from jobtracker.wiring import Deps, default_deps

MAX_MESSAGES = 1000  # per run: a Lambda invocation's worth


@dataclass
class RedriveReport:
    redriven: int = 0
    failed: int = 0
    unknown: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def payload_of(body: str) -> Any:
    """The event inside a dead-lettered message, whichever of the two shapes it has."""
    message = json.loads(body)
    if isinstance(message, dict) and "requestPayload" in message and "requestContext" in message:
        return message["requestPayload"]
    return message


def redrive_one(payload: Any, deps: Deps) -> str | None:
    """Hand one payload to its handler's logic; None when it is nothing we know."""
    if isinstance(payload, dict) and payload.get("detail-type") == "ECS Task State Change":
        return handle_task_event(payload, deps).value
    # Ticks are the rarer payload: the tick's logic (edge/ticks.py) is loaded only for one.
    from jobtracker.edge.api_models import scheduled_run
    from jobtracker.usecases.periodic import run_tick

    try:
        run = scheduled_run(payload)
    except Invalid:
        return None
    return run_tick(run, deps).outcome.value


def redrive(deps: Deps | None = None, limit: int = MAX_MESSAGES) -> RedriveReport:
    deps = deps or default_deps()
    queue_url = deps.settings.event_dlq_url
    if not queue_url:
        raise RuntimeError("EVENT_DLQ_URL is not configured")
    report = RedriveReport()
    seen = 0
    while seen < limit:
        batch = deps.queue.receive(queue_url, min(10, limit - seen))
        if not batch:
            break
        seen += len(batch)
        for message in batch:
            try:
                outcome = redrive_one(payload_of(message.body), deps)
            except Exception:
                logger.exception("redrive failed; the message stays for the next run")
                report.failed += 1
                continue
            if outcome is None:
                logger.warning("dead-lettered message of an unknown shape kept")
                report.unknown += 1
                continue
            deps.queue.delete(queue_url, message.receipt)
            report.redriven += 1
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1
    count("Redriven", report.redriven)
    return report

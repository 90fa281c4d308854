"""The one way a use case hands work to the launch queue (a launch that must wait, an array's
FANOUT, a RELEASE of dependents): retry_decider takes it from there (edge/work.py)."""

from __future__ import annotations

from typing import Any

from jobtracker.adapters.queue import MAX_DELAY_SECONDS
from jobtracker.wiring import Deps


def to_launch_queue(deps: Deps, message: dict[str, Any], delay_seconds: int = 0) -> None:
    """Send `message` (ports.work_message's) to the launch queue, delayed up to SQS's most."""
    if not deps.settings.launch_queue_url:
        raise RuntimeError("LAUNCH_QUEUE_URL is not configured")
    delay = min(MAX_DELAY_SECONDS, max(0, delay_seconds))
    deps.queue.send(deps.settings.launch_queue_url, message, delay_seconds=delay)

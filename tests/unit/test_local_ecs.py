"""Unit: the local ECS service ends a task it cannot start as ECS does (STOPPED, with a reason)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jobtracker_local.ecs import LocalEcs


def test_a_task_the_os_cannot_start_stops_with_a_reason(tmp_path: Path) -> None:
    # GIVEN a local ECS and a task whose command carries a NUL byte (no OS can exec it)
    events: list[dict[str, Any]] = []
    ecs = LocalEcs(events.append, "us-east-1", tmp_path, step_seconds=0.01)
    ecs.create_cluster("c")
    ecs.register_task_definition("worker", "worker", ["python", "-c", "pass"], {}, 2)
    try:
        # WHEN it is run
        ecs.run_task(
            {
                "cluster": "c",
                "taskDefinition": "worker",
                "overrides": {"containerOverrides": [{"name": "worker", "command": ["a\x00b"]}]},
            }
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            e["detail"]["lastStatus"] == "STOPPED" for e in events
        ):
            time.sleep(0.02)
    finally:
        ecs.shutdown()
    # THEN it ends STOPPED with the stop code and reason ECS gives, so retries and deadlines apply
    stopped = [e["detail"] for e in events if e["detail"]["lastStatus"] == "STOPPED"]
    assert stopped, [e["detail"]["lastStatus"] for e in events]
    assert stopped[-1]["stopCode"] == "TaskFailedToStart"
    assert stopped[-1]["stoppedReason"].startswith("CannotStartContainerError")

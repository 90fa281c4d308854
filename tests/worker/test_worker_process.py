"""The worker as a real process: exit codes, and real SIGTERM at the worst moments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def start(
    params: dict[str, Any],
    attempt: int = 1,
    stop_timeout: float = 30,
    tmp: Path | None = None,
    job_id: str = "job-test",
) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        JOB_ID=job_id,
        JOB_ATTEMPT=str(attempt),
        JOB_DEFINITION="demo",
        JOB_PARAMETERS=json.dumps(params),
        WORKER_STOP_TIMEOUT_SECONDS=str(stop_timeout),
    )
    if tmp is not None:
        env["JOB_CHECKPOINT_DIR"] = str(tmp)
    return subprocess.Popen(
        [sys.executable, "-m", "jobtracker_worker.main"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, _ = proc.communicate(timeout=60)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wait_for(proc: subprocess.Popen[str], message: str, seen: list[dict[str, Any]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        record = json.loads(line)
        seen.append(record)
        if record["message"] == message:
            return
    raise AssertionError(f"never logged {message!r}")


@pytest.mark.parametrize(
    ("params", "attempt", "code"),
    [
        ({"kind": "succeed", "seconds": 0.2}, 1, 0),
        ({"kind": "exit", "code": 3, "seconds": 0}, 1, 3),
        ({"kind": "flaky", "fail_attempts": 2, "seconds": 0}, 1, 2),
        ({"kind": "flaky", "fail_attempts": 2, "seconds": 0}, 3, 0),
        ({"kind": "nonsense"}, 1, 1),
        ({"kind": "succeed", "seconds": "x"}, 1, 1),
    ],
)
def test_exit_codes_follow_the_contract(params: dict[str, Any], attempt: int, code: int) -> None:
    proc = start(params, attempt)
    records = lines(proc)
    assert proc.returncode == code
    assert records[-1]["message"] == "job finished" and records[-1]["exit_code"] == code


def test_missing_job_environment_fails_clearly() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOB_")}
    proc = subprocess.run(
        [sys.executable, "-m", "jobtracker_worker.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "JOB_ID" in json.loads(proc.stdout.splitlines()[-1])["error"]


def test_sigterm_mid_unit_finishes_unit_checkpoints_and_exits_retryable(tmp_path: Path) -> None:
    # Given a long job working through 1-second units
    proc = start({"kind": "long", "units": 20, "unit_seconds": 1.0}, tmp=tmp_path)
    seen: list[dict[str, Any]] = []
    wait_for(proc, "progress", seen)  # unit 1 done, unit 2 under way
    time.sleep(0.3)  # the worst moment: in the middle of a unit
    # When ECS stops the task
    proc.send_signal(signal.SIGTERM)
    seen += lines(proc)
    # Then the current unit was finished and checkpointed, no new one started, exit retryable
    assert proc.returncode == 2
    progress = [r["done"] for r in seen if r["message"] == "progress"]
    assert progress == [1, 2]
    assert json.loads((tmp_path / "job-test.json").read_text()) == {"done": 2}
    assert any(r["message"] == "stopping before the next unit" for r in seen)
    # And the next attempt resumes after the checkpoint
    second = start({"kind": "long", "units": 4, "unit_seconds": 0.05}, attempt=2, tmp=tmp_path)
    records = lines(second)
    assert second.returncode == 0
    assert [r["done"] for r in records if r["message"] == "progress"] == [3, 4]


def test_unit_longer_than_stop_timeout_exits_retryable_before_sigkill(tmp_path: Path) -> None:
    # Given units of 30 s and a stop timeout of 3 s (SIGKILL would follow it)
    proc = start({"kind": "long", "units": 3, "unit_seconds": 30}, stop_timeout=3, tmp=tmp_path)
    seen: list[dict[str, Any]] = []
    wait_for(proc, "job started", seen)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    seen += lines(proc)
    # Then the watchdog exits with the retryable code, logging why, with the log flushed
    assert proc.returncode == 2
    assert any("stop timeout reached" in r["message"] for r in seen)


def test_second_sigterm_exits_at_once(tmp_path: Path) -> None:
    proc = start({"kind": "long", "units": 3, "unit_seconds": 30}, stop_timeout=60, tmp=tmp_path)
    seen: list[dict[str, Any]] = []
    wait_for(proc, "job started", seen)
    proc.send_signal(signal.SIGTERM)
    wait_for(proc, "termination requested: finishing the current unit", seen)
    proc.send_signal(signal.SIGTERM)
    seen += lines(proc)
    assert proc.returncode == 2
    assert any(r["message"] == "second termination signal: exiting now" for r in seen)


def test_sigterm_before_any_work_exits_retryable() -> None:
    proc = start({"kind": "succeed", "seconds": 5})
    seen: list[dict[str, Any]] = []
    wait_for(proc, "job started", seen)
    proc.send_signal(signal.SIGTERM)
    seen += lines(proc)
    assert proc.returncode == 2

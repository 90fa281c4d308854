"""The local stack's state outlives it: a crash (SIGKILL) and a restart on the same work dir."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack, start_stack, stop_stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]


def _crash(proc: subprocess.Popen[bytes], work: Path) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the stack, moto and every task: nothing cleans up
    proc.wait()
    (work / "ready.json").unlink()


def _one_job_then_ctrl_c(work: Path) -> dict[str, Any]:
    """A stack on `work` runs one job to its end and is stopped with Ctrl-C; the job."""
    proc, info = start_stack(work, "--backoff-scale", "0.02")
    stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], work)
    try:
        body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
        return stack.wait(stack.submit(body)["id"])
    finally:
        stop_stack(proc)
        (work / "ready.json").unlink()


def test_a_crashed_stack_restarts_with_its_jobs_and_recovers_the_task_it_lost(
    tmp_path: Path,
) -> None:
    # GIVEN a stack with a finished job and a job whose task is running
    proc, info = start_stack(tmp_path, "--backoff-scale", "0.02")
    stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], tmp_path)
    try:
        body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
        finished = stack.wait(stack.submit(body)["id"])
        long = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 30}}
        running = stack.wait(stack.submit(long)["id"], {"RUNNING"})
    except BaseException:
        proc.kill()
        raise
    # WHEN the stack is killed (SIGKILL) and started again on the same work dir
    _crash(proc, tmp_path)
    proc, info = start_stack(tmp_path, "--backoff-scale", "0.02")
    try:
        # THEN its clients' token still works and the finished job is there as it was
        assert info["token"] == stack.token, "the restarted stack kept its token"
        stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], tmp_path)
        kept = stack.job(finished["id"])
        assert kept["status"] == "SUCCEEDED", f"the finished job came back {kept['status']}"
        assert kept["attempts"] == finished["attempts"], "its attempts came back unchanged"
        # AND the job whose task died with the stack is found lost, relaunched and finishes
        recovered = stack.wait(running["id"], timeout=300)
        assert recovered["status"] == "SUCCEEDED", recovered
        first = recovered["attempts"][0]
        assert first["outcome"] == "retry" and "lost" in (first["stopped_reason"] or ""), (
            f"attempt 1 should be declared lost, was {first['outcome']}: {first['stopped_reason']}"
        )
    finally:
        stop_stack(proc)


def test_a_fresh_start_forgets_the_kept_jobs(tmp_path: Path) -> None:
    # GIVEN a stack that ran a job and stopped with Ctrl-C
    job = _one_job_then_ctrl_c(tmp_path)
    # WHEN it starts again with --fresh
    proc, info = start_stack(tmp_path, "--backoff-scale", "0.02", "--fresh")
    try:
        stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], tmp_path)
        # THEN the job is gone
        status, _ = stack.request("GET", f"/jobs/{job['id']}")
        assert status == 404, f"a fresh stack answered {status} for a job of the last run"
    finally:
        stop_stack(proc)


def test_a_stopped_stack_keeps_what_its_last_moments_wrote(tmp_path: Path) -> None:
    # GIVEN a stack that finishes a job and is stopped with Ctrl-C right away
    job = _one_job_then_ctrl_c(tmp_path)
    # WHEN it starts again
    proc, info = start_stack(tmp_path, "--backoff-scale", "0.02")
    try:
        stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], tmp_path)
        # THEN the job is there, finished
        assert stack.job(job["id"])["status"] == "SUCCEEDED", "the stopped stack kept the job"
    finally:
        stop_stack(proc)


DEMO = "demo-every-10-minutes"  # the demo schedule's name in its tick (template.yaml)


def _demo_state(stack: Stack) -> str:
    status, page = stack.request("GET", "/schedules")
    assert status == 200, page
    return str(next(s["state"] for s in page["schedules"] if s["name"] == DEMO))


def test_a_paused_schedule_stays_paused_across_a_restart(tmp_path: Path) -> None:
    # GIVEN a stack whose demo schedule was paused through the API
    proc, info = start_stack(tmp_path, "--backoff-scale", "0.02")
    try:
        stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], tmp_path)
        status, paused = stack.request("POST", f"/schedules/{DEMO}/pause")
        assert status == 200 and paused["state"] == "DISABLED", paused
        # the stack notes a schedule's state as it looks before firing (once a second)
        kept = tmp_path / "state" / "schedules.json"
        deadline = time.time() + 10
        while time.time() < deadline and "DISABLED" not in (
            kept.read_text() if kept.exists() else ""
        ):
            time.sleep(0.2)
    finally:
        stop_stack(proc)
        (tmp_path / "ready.json").unlink()
    # WHEN it starts again on the same work dir
    proc, info = start_stack(tmp_path, "--backoff-scale", "0.02")
    try:
        stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], tmp_path)
        # THEN the schedule is still paused (the template says ENABLED)
        assert _demo_state(stack) == "DISABLED", "a restart resumed a paused schedule"
    finally:
        stop_stack(proc)

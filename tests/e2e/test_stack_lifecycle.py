"""The local stack's own lifecycle: Ctrl-C stops it and every task process it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import start_stack

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by a dead parent) is gone for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _workers_of(job_id: str) -> list[int]:
    """Worker processes whose environment says JOB_ID=job_id."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"JOB_ID={job_id}".encode() in environ:
            found.append(int(entry.name))
    return found


def _long_job_processes(info: dict[str, str], log: Path) -> list[int]:
    """Submit a long job; return the pids of its worker process once it runs."""
    body = json.dumps(
        {"definition": "demo", "parameters": {"kind": "long", "units": 1000, "unit_seconds": 1}}
    )
    req = urllib.request.Request(
        info["api"] + "/jobs",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {info['token']}", "Content-Type": "application/json"},
    )
    job = json.loads(urllib.request.urlopen(req, timeout=30).read())
    for _ in range(100):
        pids = _workers_of(job["id"])
        if pids:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"no worker process for {job['id']}: {log.read_text()[-3000:]}")


def _gone(pids: list[int]) -> bool:
    for _ in range(50):
        if not [p for p in pids if _alive(p)]:
            return True
        time.sleep(0.1)
    return False


def _signal_thread(pid: int, which: str, signum: int) -> None:
    """kill(2) on a thread id still signals the whole process, but the kernel hands the signal to
    that thread: which thread takes a Ctrl-C is the kernel's choice, so both cases are tested."""
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    target = pid if which == "main" else next(t for t in reversed(tids) if t != pid)
    os.kill(target, signum)


@pytest.mark.parametrize("receiving_thread", ["main", "another"])
def test_ctrl_c_stops_the_stack_and_leaves_no_task_process(
    tmp_path: Path, receiving_thread: str
) -> None:
    proc, info = start_stack(tmp_path)
    log = tmp_path / "stack.log"
    try:
        # Given a long job running as a local process
        pids = _long_job_processes(info, log)
        # When the stack gets Ctrl-C, taken by its main thread or by any other
        _signal_thread(proc.pid, receiving_thread, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "still running 30s after Ctrl-C:\n" + log.read_text()[-4000:]
            ) from None
        # Then it stops cleanly and its task processes are gone
        output = log.read_text()
        assert proc.returncode == 0, output
        assert "stopped." in output
        assert _gone(pids)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_killed_stack_leaves_no_task_process(tmp_path: Path) -> None:
    proc, info = start_stack(tmp_path)
    try:
        pids = _long_job_processes(info, tmp_path / "stack.log")
        # When the stack dies without a chance to clean up
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # Then its task processes die with it
        assert _gone(pids)
    finally:
        if proc.poll() is None:
            proc.kill()


BURST = 100  # jobs: launched in about two minutes at the account's 1 a second


def test_a_burst_past_the_launch_limits_runs_every_job_and_fails_none(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.conftest import Stack, start_stack

    # GIVEN a local stack whose account launches 1 task a second, 3 at once: below what 8
    # clients submit even on a busy CI machine (3 a second was not: the burst never queued)
    proc, info = start_stack(
        tmp_path,
        "--backoff-scale",
        "0.02",
        "--ecs-launch-rate",
        "1",
        "--ecs-launch-burst",
        "3",
    )
    stack = Stack(info["api"], info["token"], info["moto"], info["ecs"], tmp_path)
    try:
        # WHEN 100 jobs are submitted at once
        body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
        with ThreadPoolExecutor(8) as pool:
            jobs = list(pool.map(lambda _: stack.submit(body), range(BURST)))
        queued = sum(1 for j in jobs if j["status"] == "PENDING")
        # THEN every one of them succeeds, none fails for the platform's sake
        done = [stack.wait(j["id"], timeout=300) for j in jobs]
        assert [j["status"] for j in done] == ["SUCCEEDED"] * BURST
        assert queued >= 20, f"only {queued} of the burst waited for launch capacity"
        # AND RunTask never went past the limit, and no attempt ran twice
        ecs = stack.ecs_tasks()
        assert ecs["throttled"] == 0, "the governor kept every launch within the account's rate"
        # (the demo schedule may tick meanwhile: only the burst's own jobs are counted)
        ids = {j["id"] for j in jobs}
        per_job = dict.fromkeys(ids, 0)
        for task in ecs["tasks"]:
            if task["startedBy"] in ids:
                per_job[task["startedBy"]] += 1
        assert sorted(per_job.values()) == [1] * BURST, "each job launched exactly one task"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)

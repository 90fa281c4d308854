"""Unit: a task the zygote forks behaves as the `python -m jobtracker_worker.main` process it
replaces: its environment, its output on the pipe, its exit code, SIGTERM's graceful stop, its
own process group, and a start failure as Popen raises it."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobtracker_local.ecs import WORKER_PATH, die_with_parent
from jobtracker_local.zygote import Zygote


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote(WORKER_PATH, die_with_parent)
    yield z
    z.stop()


def env(**job: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "JOB_ID": "job-1", "JOB_ATTEMPT": "1", **job}


def test_a_job_runs_with_its_environment_and_exits_with_its_code(zygote: Zygote) -> None:
    proc = zygote.spawn(env(JOB_PARAMETERS=json.dumps({"kind": "exit", "code": 3})))
    assert proc.stdout is not None
    lines = [json.loads(line) for line in proc.stdout]
    assert proc.wait() == 3
    assert lines[0]["message"] == "job started" and lines[0]["job_id"] == "job-1"
    assert lines[-1] == {**lines[-1], "message": "job finished", "exit_code": 3}


def test_a_job_that_cannot_start_fails_as_the_worker_does(zygote: Zygote) -> None:
    proc = zygote.spawn({"JOB_PARAMETERS": "{}"})  # no JOB_ID: the worker refuses
    assert proc.stdout is not None
    assert b"cannot start" in proc.stdout.read()
    assert proc.wait() == 1


def test_sigterm_stops_the_job_retryable_and_sigkill_reaches_its_group(zygote: Zygote) -> None:
    proc = zygote.spawn(env(JOB_PARAMETERS=json.dumps({"kind": "succeed", "seconds": 30})))
    assert proc.stdout is not None
    assert b"job started" in proc.stdout.readline()
    assert os.getpgid(proc.pid) == proc.pid  # a session (and group) of its own
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 2  # EXIT_RETRYABLE: the worker's graceful stop
    again = zygote.spawn(env(JOB_PARAMETERS=json.dumps({"kind": "succeed", "seconds": 30})))
    assert again.stdout is not None
    again.stdout.readline()
    os.killpg(again.pid, signal.SIGKILL)
    assert again.wait() == -signal.SIGKILL


def test_a_stopped_zygote_starts_nothing(tmp_path: object) -> None:
    z = Zygote(WORKER_PATH, die_with_parent)
    z.stop()
    with pytest.raises(OSError):
        z.spawn(env())


def test_many_tasks_at_once_each_get_their_own_exit_code(zygote: Zygote) -> None:
    procs = [
        zygote.spawn(env(JOB_PARAMETERS=json.dumps({"kind": "exit", "code": n}))) for n in range(8)
    ]
    started = time.monotonic()
    codes = []
    for p in procs:
        assert p.stdout is not None
        p.stdout.read()
        codes.append(p.wait())
    assert codes == list(range(8))
    assert time.monotonic() - started < 10


def test_the_task_shows_its_own_environment_and_command(zygote: Zygote) -> None:
    # (tools find a job's worker by JOB_ID in /proc/PID/environ; ps shows its command)
    proc = zygote.spawn(env(JOB_PARAMETERS=json.dumps({"kind": "succeed", "seconds": 30})))
    assert proc.stdout is not None
    proc.stdout.readline()
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert b"JOB_ID=job-1" in environ
    assert not any(e.startswith(b"JOBTRACKER_ZYGOTE_ROOM=") for e in environ)
    assert cmdline[1:4] == [b"-S", b"-m", b"jobtracker_worker.main"]


def test_an_environment_too_large_to_show_is_left_to_popen() -> None:
    assert Zygote.takes(env())
    assert not Zygote.takes(env(BIG="x" * 70_000))
    assert not Zygote.takes({"A\0B": "x"})

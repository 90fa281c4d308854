"""The local stack as a real process, reached over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    api: str
    token: str
    moto: str
    ecs: str
    work_dir: Path

    def client(self, service: str) -> Any:
        """A boto3 client of the stack's moto (any key is accepted there)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.moto,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not False:  # type: ignore[comparison-overlap]
            headers["Authorization"] = f"Bearer {token or self.token}"
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def invocations(self, function: str) -> int:
        """How many times the stack has invoked `function` (its /_local/health counters)."""
        with urllib.request.urlopen(self.api + "/_local/health", timeout=30) as resp:
            stats = json.loads(resp.read())["stats"]
        return int(stats["invocations"].get(function, 0))

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        status, job = self.request("POST", "/jobs", body)
        assert status in (201, 202), job
        return job  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        status, job = self.request("GET", f"/jobs/{job_id}")
        assert status == 200, job
        return job  # type: ignore[no-any-return]

    def wait(
        self, job_id: str, statuses: set[str] | None = None, timeout: float = 90
    ) -> dict[str, Any]:
        statuses = statuses or {"SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"}
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            time.sleep(0.25)
        raise AssertionError(f"{job_id} still {self.job(job_id)['status']} after {timeout}s")

    def faults(self, body: dict[str, Any]) -> None:
        req = urllib.request.Request(
            self.ecs + "/_faults",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.token}"},  # the local ECS's helpers need it
        )
        urllib.request.urlopen(req, timeout=10).read()

    def ecs_tasks(self) -> dict[str, Any]:
        req = urllib.request.Request(
            self.ecs + "/_tasks", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]


def peak_concurrency(tasks: list[dict[str, Any]], start: str = "startedAt") -> int:
    """Most tasks between `start` (startedAt, or createdAt: from RunTask on) and stoppedAt at
    the same moment."""
    edges: list[tuple[float, int]] = []
    for task in tasks:
        began, stopped = task.get(start), task.get("stoppedAt")
        if began and stopped:
            edges += [(_epoch(began), 1), (_epoch(stopped), -1)]
    running = peak = 0
    for _, step in sorted(edges):  # at a tie, a stop (-1) sorts before a start
        running += step
        peak = max(peak, running)
    return peak


def _epoch(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def start_stack(work: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """`python -m jobtracker_local.main` as a process; returns it once its endpoints are ready."""
    ready = work / "ready.json"
    log = work / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobtracker_local.main",
            "--port",
            "0",
            "--work-dir",
            str(work),
            "--ready-file",
            str(ready),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while not ready.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("local stack did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.1)
    return proc, json.loads(ready.read_text())


def stop_stack(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Ctrl-C, as a user stops it; killed if it has not stopped within `timeout` seconds."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("local-stack")
    proc, info = start_stack(work, "--backoff-scale", "0.02")
    yield Stack(info["api"], info["token"], info["moto"], info["ecs"], work)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)

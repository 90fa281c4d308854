"""The demo: a success, a flaky job retried to success, a fatal failure and a launch capacity
error, submitted over HTTP and watched until each reaches its final state."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

from jobtracker.core.domain import JobStatus

DEMO_JOBS = [
    ("success", {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 1}}, None),
    (
        "flaky, retried",
        {
            "definition": "demo",
            "parameters": {"kind": "flaky", "fail_attempts": 2, "seconds": 0.5},
            "retry": {"max_attempts": 4, "backoff": {"base_seconds": 20}},
        },
        None,
    ),
    (
        "fatal exit 3",
        {"definition": "demo", "parameters": {"kind": "exit", "code": 3, "seconds": 0.5}},
        None,
    ),
    (
        "capacity error at launch",
        {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 1, "demo": "capacity"}},
        {"run_task": ["capacity", "capacity"], "match": '"demo":"capacity"'},
    ),
    (
        "image pull error, retried",
        {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 1, "demo": "pull"}},
        {"start": ["pull"], "match": '"demo":"pull"'},
    ),
]


def request(url: str, token: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def run_demo(api: str, token: str, stack: Any, stopping: threading.Event | None = None) -> None:
    jobs = []
    for label, body, faults in DEMO_JOBS:
        if faults:
            ecs_url = f"http://127.0.0.1:{stack.ecs_port}/_faults"
            urllib.request.urlopen(
                urllib.request.Request(
                    ecs_url,
                    data=json.dumps(faults).encode(),
                    method="POST",
                    headers={"Authorization": f"Bearer {token}"},  # the helpers' one key
                )
            )
        status, job = request(f"{api}/jobs", token, "POST", body)
        print(
            f"[demo] POST /jobs {label!r}: HTTP {status}, job {job['id']} {job['status']}",
            flush=True,
        )
        jobs.append((label, job["id"]))
    last: dict[str, str] = {}
    deadline = time.time() + 180
    while time.time() < deadline and not (stopping and stopping.is_set()):
        done = True
        for label, job_id in jobs:
            _, job = request(f"{api}/jobs/{job_id}", token)
            line = f"{job['status']} (attempt {job['attempt']})"
            if last.get(job_id) != line:
                reason = f" - {job['status_reason']}" if job["status"] in ("FAILED",) else ""
                print(f"[demo] {label:28s} {line}{reason}", flush=True)
                last[job_id] = line
            done = done and JobStatus(job["status"]).terminal
        if done:
            break
        time.sleep(0.5)
    print("[demo] final states:", flush=True)
    for label, job_id in jobs:
        _, job = request(f"{api}/jobs/{job_id}", token)
        attempts = ", ".join(
            f"#{a['number']} {a['outcome'] or a['status']}"
            + (f" [{a['rule']}]" if a["rule"] else "")
            for a in job["attempts"]
        )
        print(f"[demo]   {label:28s} {job['status']:10s} attempts: {attempts}", flush=True)
    print(
        "[demo] done. The stack keeps running: try the API with curl, Ctrl-C to stop.", flush=True
    )

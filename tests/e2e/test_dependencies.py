"""Dependencies end to end on the local stack (real workers, the table's stream, the launch
queue): a chain, a cleanup after a failure, a dependent that can never run, per-index arrays and
a sequential array, each checked against the tasks the local ECS ran."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.e2e.conftest import Stack, _epoch, peak_concurrency

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]

QUICK = {"kind": "succeed", "seconds": 0.3}


def submit(stack: Stack, *after: dict[str, str], **body: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"definition": "demo", "parameters": QUICK, **body}
    if after:
        fields["depends_on"] = list(after)
    status, job = stack.request("POST", "/jobs", fields)
    assert status in (201, 202), (status, job)
    return job


def tasks_of(stack: Stack, *prefixes: str) -> dict[str, dict[str, Any]]:
    """The local ECS's tasks by the job they ran (startedBy), for jobs with these id prefixes."""
    return {
        t["startedBy"]: t
        for t in stack.ecs_tasks()["tasks"]
        if t.get("startedBy", "").startswith(prefixes)
    }


def test_a_chain_runs_each_step_after_the_one_before_stopped(stack: Stack) -> None:
    # GIVEN A -> B -> C
    a = submit(stack)
    b = submit(stack, {"job_id": a["id"]})
    c = submit(stack, {"job_id": b["id"]})
    assert (b["status"], c["status"]) == ("WAITING", "WAITING"), (b, c)
    # WHEN they run THEN all succeed, and each task was created after the one before stopped
    assert stack.wait(c["id"], timeout=120)["status"] == "SUCCEEDED"
    tasks = tasks_of(stack, a["id"], b["id"], c["id"])
    order = [tasks[j["id"]] for j in (a, b, c)]
    for before, after in itertools.pairwise(order):
        assert _epoch(after["createdAt"]) >= _epoch(before["stoppedAt"]), (before, after)


def test_a_failure_runs_its_cleanup_and_cancels_its_dependent_unlaunched(stack: Stack) -> None:
    # GIVEN a job that fails, a cleanup after it finishes, and a step that needs it to succeed
    failing = submit(stack, parameters={"kind": "exit", "code": 3}, retry={"max_attempts": 1})
    cleanup = submit(stack, {"job_id": failing["id"], "condition": "finished"})
    step = submit(stack, {"job_id": failing["id"]})
    # WHEN it fails THEN the cleanup succeeds and the step ends CANCELLED with no task
    assert stack.wait(failing["id"], timeout=120)["status"] == "FAILED"
    assert stack.wait(cleanup["id"], timeout=120)["status"] == "SUCCEEDED"
    ended = stack.wait(step["id"], timeout=60)
    assert ended["status"] == "CANCELLED", ended
    assert ended["status_reason"] == f"dependency {failing['id']} ended FAILED", ended
    assert step["id"] not in tasks_of(stack, step["id"]), "never launched"
    # AND the failing job's page lists both as its dependents
    status, page = stack.request("GET", f"/jobs/{failing['id']}")
    shown = {j["id"] for j in page["dependents"]["jobs"]}
    assert status == 200 and shown == {cleanup["id"], step["id"]}, page["dependents"]


def test_per_index_arrays_of_50_run_child_i_only_after_child_i(stack: Stack) -> None:
    # GIVEN an array A of 50 and B of 50 whose child i waits on A's child i
    a = submit(stack, array={"size": 50, "max_running": 10})
    b = submit(stack, {"job_id": a["id"], "mode": "per_index"}, array={"size": 50})
    # WHEN both run
    assert stack.wait(b["id"], timeout=600)["status"] == "SUCCEEDED"
    # THEN B's child i was created only after A's child i stopped, for every i
    tasks = tasks_of(stack, a["id"] + "-", b["id"] + "-")
    for i in range(50):
        first, then = tasks[f"{a['id']}-{i}"], tasks[f"{b['id']}-{i}"]
        assert _epoch(then["createdAt"]) >= _epoch(first["stoppedAt"]), i


def test_a_sequential_array_of_10_runs_one_child_at_a_time_in_order(stack: Stack) -> None:
    parent = submit(stack, array={"size": 10, "sequential": True})
    assert stack.wait(parent["id"], timeout=300)["status"] == "SUCCEEDED"
    tasks = tasks_of(stack, parent["id"] + "-")
    runs = sorted(tasks.values(), key=lambda t: _epoch(t["createdAt"]))
    order = [int(t["startedBy"].rsplit("-", 1)[1]) for t in runs]
    assert order == list(range(10)), order
    assert peak_concurrency(list(tasks.values()), start="createdAt") == 1

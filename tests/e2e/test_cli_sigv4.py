"""End-to-end: the `jobtracker` CLI against the running local stack, signing with SigV4 from the
credentials the stack wrote to stack.json, as it signs for API Gateway on AWS."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jobtracker_client.cli import main
from jobtracker_client.client import ApiError, JobTracker, SigV4
from jobtracker_client.endpoints import for_local

from jobtracker.edge.views import JobSummary
from tests.e2e.conftest import ROOT, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]


def stack_file(stack: Stack) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((stack.work_dir / "stack.json").read_text())
    return info


def signing_client(stack: Stack) -> JobTracker:
    """The client the CLI builds from stack.json, checked to sign with SigV4 (not the token)."""
    client = for_local(stack_file(stack))
    assert isinstance(client.auth, SigV4), "stack.json carries credentials: the client signs"
    return client


def cli(client: JobTracker, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), client=client, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_stack_file_holds_iam_shaped_credentials_for_its_owner_only(stack: Stack) -> None:
    # GIVEN the running stack; WHEN its stack.json is read
    path = stack.work_dir / "stack.json"
    creds = stack_file(stack)["credentials"]
    # THEN it carries the stack's key pair, and only its owner may read it
    assert creds["access_key_id"].startswith("AKIA") and len(creds["access_key_id"]) == 20, creds
    assert len(creds["secret_access_key"]) == 40
    assert path.stat().st_mode & 0o777 == 0o600, oct(path.stat().st_mode)


def cli_env(stack: Stack) -> dict[str, str]:
    """This process's environment without AWS or jobtracker settings, finding the stack
    through JOBTRACKER_LOCAL_DIR only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JOBTRACKER_"))}
    env["JOBTRACKER_LOCAL_DIR"] = str(stack.work_dir)
    return env


def cli_process(
    argv: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """The `jobtracker` CLI run as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "jobtracker_client.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_cli_process_submits_and_watches_a_job_to_success(stack: Stack) -> None:
    # GIVEN the CLI as its own process, finding the stack through JOBTRACKER_LOCAL_DIR only
    # WHEN it submits a job and watches it
    argv = ["submit", "demo", "--parameters", '{"kind":"succeed","seconds":0}', "--watch"]
    done = cli_process(argv, cli_env(stack), timeout=120)
    # THEN it exits 0 (SUCCEEDED): every signed call was accepted
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "SUCCEEDED" in done.stdout, done.stdout


@pytest.mark.parametrize("how", ["--api", "JOBTRACKER_API"])
def test_the_cli_given_the_local_stacks_address_signs_with_its_credentials(
    stack: Stack, how: str
) -> None:
    # GIVEN the CLI as its own process with no AWS credentials at all, told the address the
    # stack printed (after the command, or in JOBTRACKER_API)
    env = cli_env(stack)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    argv = ["list"]
    if how == "--api":
        argv += ["--api", stack.api + "/"]
    else:
        env["JOBTRACKER_API"] = stack.api
    # WHEN it lists jobs
    done = cli_process(argv, env, timeout=60)
    # THEN the stack at that address was found and its credentials signed the request
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "credentials" not in done.stderr, done.stderr


def test_the_cli_exits_non_zero_with_the_diagnosis_when_the_job_fails(stack: Stack) -> None:
    # GIVEN a job that exits 1
    client = signing_client(stack)
    # WHEN it is submitted and watched through the CLI
    code, out, err = cli(
        client, "submit", "demo", "--parameters", '{"kind":"exit","code":1,"seconds":0}', "--watch"
    )
    # THEN the CLI exits as for FAILED and says what to do
    assert code == 1, f"exit {code}\n{out}\n{err}"
    assert "what to do:" in out, out


def test_the_cli_shows_a_finished_jobs_worker_lines(stack: Stack) -> None:
    # GIVEN a job that ran to success
    client = signing_client(stack)
    job = client.submit("demo", {"kind": "succeed", "seconds": 0})
    assert client.wait(job.id, timeout=90).status == "SUCCEEDED"
    # WHEN its logs are asked for through the CLI
    code, out, err = cli(client, "logs", job.id)
    # THEN the worker's own lines are shown
    assert code == 0, err
    assert "job finished" in out, out


def test_the_cli_follows_a_running_jobs_lines_until_its_task_ends(stack: Stack) -> None:
    # GIVEN a job that logs progress for a few seconds, and is running
    client = signing_client(stack)
    params = {"kind": "long", "units": 4, "unit_seconds": 1}
    job = client.submit("demo", params)
    deadline = time.time() + 90
    while (status := client.get(job.id).status) not in ("RUNNING", "SUCCEEDED", "FAILED"):
        assert time.time() < deadline, f"the job was still {status} after 90 s"
        time.sleep(0.2)
    assert status == "RUNNING", f"the job was {status} before logs --follow"
    # WHEN its logs are followed through the CLI
    code, out, err = cli(client, "logs", job.id, "--follow")
    # THEN every progress line arrives, up to the last, and the follow ends with the attempt
    assert code == 0, err
    assert out.count('"progress"') == 4 and "job finished" in out, out
    assert client.get(job.id).status == "SUCCEEDED", "the follow ended before the job did"


DEMO = "demo-every-10-minutes"  # the demo schedule's name in its tick (template.yaml)


def test_the_cli_process_pauses_and_resumes_the_demo_schedule(stack: Stack) -> None:
    # GIVEN the CLI as its own process, and the stack's demo schedule, active
    env = cli_env(stack)
    try:
        # WHEN `jobtracker schedules pause` runs (the README's command)
        paused = cli_process(["schedules", "pause", DEMO], env, timeout=60)
        # THEN it exits 0 showing the schedule paused, and the API says so
        assert paused.returncode == 0, f"stdout:\n{paused.stdout}\nstderr:\n{paused.stderr}"
        assert DEMO in paused.stdout and "paused" in paused.stdout, paused.stdout
        _, page = stack.request("GET", "/schedules")
        assert next(s["state"] for s in page["schedules"] if s["name"] == DEMO) == "DISABLED"
        # AND `jobtracker schedules resume` makes it active again, with its next tick
        resumed = cli_process(["schedules", "resume", DEMO, "-o", "json"], env, timeout=60)
        assert resumed.returncode == 0, resumed.stderr
        shown = json.loads(resumed.stdout)
        assert shown["state"] == "ENABLED" and shown["next_tick"], shown
    finally:
        stack.request("POST", f"/schedules/{DEMO}/resume")  # the other tests' demo schedule


def test_the_cli_runs_the_demo_schedule_now_and_watches_its_job_to_success(stack: Stack) -> None:
    # GIVEN the demo schedule (overlap Forbid: wait out a run still active)
    client = signing_client(stack)
    for _ in range(20):
        # WHEN `jobtracker schedules run NAME --watch` runs
        code, out, err = cli(client, "schedules", "run", DEMO, "--watch")
        if "still active" not in err:
            break
        time.sleep(1)
    # THEN it exits 0: the tick's job ran to success
    assert code == 0, f"exit {code}\n{out}\n{err}"
    assert "SUCCEEDED" in out and DEMO in out, out


class SmallPages(JobTracker):
    """The client with pages of 7 jobs, recording each page's query."""

    queries: list[dict[str, str | None]]

    def list(
        self,
        status: str | None = None,
        definition: str | None = None,
        schedule: str | None = None,
        limit: int | None = None,
        page_size: int = 7,
        tag: str | None = None,
    ) -> Iterator[JobSummary]:
        return super().list(status, definition, schedule, limit, page_size=7, tag=tag)

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if path == "/jobs" and method == "GET":
            self.queries.append(dict(query or {}))
        return super()._call(method, path, body, query, headers)


def test_the_cli_lists_thirty_jobs_across_signed_pages(stack: Stack) -> None:
    # GIVEN more than 30 jobs, and a client fetching 7 a page
    for _ in range(31):
        stack.submit({"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}})
    signed = signing_client(stack)
    client = SmallPages(signed.api_url, signed.auth)
    client.queries = []
    # WHEN the CLI lists 30
    code, out, err = cli(client, "list", "--limit", "30")
    # THEN 30 rows come back, through several pages each signed (a next_token every page after one)
    assert code == 0, err
    rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert len(rows) == 30, out
    assert len(client.queries) == 5, client.queries  # 7 + 7 + 7 + 7 + 2
    assert all(q["next_token"] for q in client.queries[1:]), client.queries


def test_a_request_signed_with_a_wrong_secret_is_refused_403(stack: Stack) -> None:
    # GIVEN a client with the stack's key id but another secret
    creds = stack_file(stack)["credentials"]
    client = JobTracker(stack.api, SigV4.static(creds["access_key_id"], "x" * 40, "us-east-1"))
    # WHEN it lists jobs
    with pytest.raises(ApiError) as refused:
        list(client.list(limit=1))
    # THEN API Gateway's answer to a bad signature comes back
    assert refused.value.status == 403, refused.value
    assert "signature we calculated does not match" in refused.value.message, refused.value


def test_a_request_signed_with_an_unknown_key_is_refused_403(stack: Stack) -> None:
    # GIVEN a client with a key the stack never issued
    client = JobTracker(stack.api, SigV4.static("AKIAUNKNOWNUNKNOWNXX", "x" * 40, "us-east-1"))
    # WHEN it lists jobs; THEN it is refused as an invalid security token
    with pytest.raises(ApiError) as refused:
        list(client.list(limit=1))
    assert refused.value.status == 403, refused.value
    assert "security token included in the request is invalid" in refused.value.message


def test_the_cli_submits_an_array_watches_it_to_success_and_lists_its_children(
    stack: Stack,
) -> None:
    # GIVEN the README's array command: 6 children, 2 at once
    argv = ["submit", "demo", "--parameters", '{"kind":"succeed","seconds":0}']
    argv += ["--array", "6", "--max-running", "2", "--watch"]
    # WHEN it runs
    done = cli_process(argv, cli_env(stack), timeout=180)
    # THEN it exits 0 with the parent SUCCEEDED, its progress counted to 6/6
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "6/6 done: 6 SUCCEEDED" in done.stdout, done.stdout
    parent = done.stdout.split()[0]
    # AND `children` lists the six by index
    listed = cli_process(["children", parent], cli_env(stack), timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [(str(i), "SUCCEEDED") for i in range(6)], rows


def test_the_cli_runs_an_arrays_failed_children_again_and_watches_them_succeed(
    stack: Stack,
) -> None:
    # GIVEN an array of 3 whose children fail their first attempt (none retried by rule:
    # max_attempts 1), all 3 failures tolerated: the parent SUCCEEDED with 3 failed
    argv = ["submit", "demo", "--parameters", '{"kind":"flaky","fail_attempts":1,"seconds":0}']
    argv += ["--retry", '{"max_attempts":1}', "--array", "3", "--tolerated-failures", "3"]
    first = cli_process([*argv, "--watch"], cli_env(stack), timeout=180)
    assert first.returncode == 0, f"stdout:\n{first.stdout}\nstderr:\n{first.stderr}"
    assert "3/3 done: 3 FAILED" in first.stdout, first.stdout
    parent = first.stdout.split()[0]
    # WHEN its failed children are run again
    again = cli_process(["rerun", parent, "--failed", "--watch"], cli_env(stack), timeout=180)
    # THEN they ran their second attempt in their own indexes, and the parent SUCCEEDED
    assert again.returncode == 0, f"stdout:\n{again.stdout}\nstderr:\n{again.stderr}"
    assert "3/3 done: 3 SUCCEEDED" in again.stdout, again.stdout
    listed = cli_process(["children", parent], cli_env(stack), timeout=60)
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [(str(i), "SUCCEEDED", "2") for i in range(3)]


def test_the_cli_chains_a_job_after_another_and_shows_both_ends_of_the_link(stack: Stack) -> None:
    # GIVEN a job submitted with the CLI, and one --after it
    quick = ["--parameters", '{"kind":"succeed","seconds":0.5}', "-o", "json"]
    first = cli_process(["submit", "demo", *quick], cli_env(stack), timeout=60)
    assert first.returncode == 0, first.stderr
    first_id = json.loads(first.stdout)["id"]
    after = cli_process(
        ["submit", "demo", "--after", f"{first_id}:finished", "--watch"], cli_env(stack), 120
    )
    # THEN the dependent ran once the first ended, and exits 0
    assert after.returncode == 0, f"stdout:\n{after.stdout}\nstderr:\n{after.stderr}"
    second_id = after.stderr.split("submitted ", 1)[1].split()[0]
    # AND `get` of each shows the other as a link to follow
    shown = cli_process(["get", second_id], cli_env(stack), timeout=60).stdout
    assert "depends on:" in shown and first_id in shown and "finished" in shown, shown
    assert "met" in shown, shown
    back = cli_process(["get", first_id], cli_env(stack), timeout=60).stdout
    assert "dependents:" in back and second_id in back, back
    listed = cli_process(["dependents", first_id], cli_env(stack), timeout=60).stdout
    assert second_id in listed, listed

"""The Python client and the CLI against a small fake API over real HTTP: paging, waiting,
retrying what is transient, and the API's errors shown as they are (never a traceback)."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jobtracker_client import ApiError, Bearer, JobTracker, SigV4, WaitTimeout
from jobtracker_client.cli import EXIT_CODES, main, parser

Answer = tuple[int, Any]


class FakeApi:
    """Answers each (method, path) from a script; records what it was asked."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[dict[str, list[str]], Any], Answer]] = {}
        self.requests: list[dict[str, Any]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(
        self, method: str, path: str, answer: Callable[[dict[str, list[str]], Any], Answer]
    ) -> None:
        self.routes[(method, path)] = answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                query = parse_qs(parts.query)
                api.requests.append(
                    {
                        "method": self.command,
                        "path": parts.path,
                        "query": query,
                        "body": body,
                        "headers": dict(self.headers),
                    }
                )
                answer = api.routes.get((self.command, parts.path))
                status, payload = answer(query, body) if answer else (404, {"message": "Not Found"})
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _serve

        return Handler


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    fake.server.shutdown()


def client(api: FakeApi, sleeps: list[float] | None = None) -> JobTracker:
    record = sleeps if sleeps is not None else []
    return JobTracker(api.url, Bearer("t"), sleep=record.append)


def job(job_id: str = "job-1", status: str = "RUNNING", attempt: int = 1) -> dict[str, Any]:
    return {
        "id": job_id, "definition": "demo", "status": status, "status_reason": None,
        "attempt": attempt, "created_at": "2026-11-24T00:00:00.000Z",
        "updated_at": "2026-11-24T00:00:01.000Z", "finished_at": None, "not_before": None,
        "launch_error": None, "command": None, "parameters": {"n": 1}, "environment": {},
        "timeout_seconds": None, "start_timeout_seconds": None, "queue_timeout_seconds": None,
        "retry": {}, "retry_overrides": {"max_attempts": 2}, "tags": {"team": "x"},
        "schedule": None, "scheduled_time": None, "attempts": [], "links": {}, "cost_usd": None,
    }  # fmt: skip


def summary(n: int) -> dict[str, Any]:
    j = job(f"job-{n}")
    return {k: j[k] for k in ("id", "definition", "status", "attempt", "created_at",
                              "updated_at", "schedule", "links")}  # fmt: skip


def test_list_follows_next_token_across_pages_until_the_last(api: FakeApi) -> None:
    # GIVEN 5 jobs served 2 a page
    def page(query: dict[str, list[str]], _: Any) -> Answer:
        start = int(query.get("next_token", ["0"])[0])
        ids = range(start, min(start + 2, 5))
        token = str(start + 2) if start + 2 < 5 else None
        return 200, {"jobs": [summary(i) for i in ids], "next_token": token}

    api.on("GET", "/jobs", page)
    # WHEN they are listed
    got = [j.id for j in client(api).list(page_size=2)]
    # THEN every page was read, in order, and no more
    assert got == [f"job-{i}" for i in range(5)], got
    assert len(api.requests) == 3, "three pages"


def test_list_stops_at_its_limit_without_reading_further_pages(api: FakeApi) -> None:
    api.on(
        "GET", "/jobs", lambda q, _: (200, {"jobs": [summary(1), summary(2)], "next_token": "x"})
    )
    got = list(client(api).list(limit=3, page_size=2))
    assert len(got) == 3 and len(api.requests) == 2, (len(got), len(api.requests))
    assert api.requests[1]["query"]["limit"] == ["1"], "the last page asks only for what is left"


def test_wait_polls_with_growing_pauses_until_terminal_and_reports_each_change(
    api: FakeApi,
) -> None:
    # GIVEN a job RUNNING for three reads, then SUCCEEDED
    answers = iter(["RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"])
    api.on("GET", "/jobs/job-1", lambda q, _: (200, job(status=next(answers))))
    sleeps: list[float] = []
    changes: list[str] = []
    # WHEN waited for
    done = client(api, sleeps).wait("job-1", on_change=lambda j: changes.append(j.status))
    # THEN it returns the terminal job, saw each change once, and backed off while nothing moved
    assert done.status == "SUCCEEDED"
    assert changes == ["RUNNING", "SUCCEEDED"], changes
    assert sleeps == sorted(sleeps) and sleeps[0] < sleeps[-1], sleeps


def test_wait_gives_up_after_its_timeout_with_the_last_job_seen(api: FakeApi) -> None:
    api.on("GET", "/jobs/job-1", lambda q, _: (200, job(status="RUNNING")))
    now = [0.0]
    c = JobTracker(api.url, Bearer("t"), sleep=lambda s: now.__setitem__(0, now[0] + s),
                   clock=lambda: now[0])  # fmt: skip
    with pytest.raises(WaitTimeout) as info:
        c.wait("job-1", timeout=10)
    assert info.value.job.status == "RUNNING"
    assert now[0] == pytest.approx(10), "it waited its whole timeout, not more"


def test_an_api_error_carries_its_code_message_and_fields(api: FakeApi) -> None:
    fields = [{"field": "definition", "message": "unknown"}, {"field": "retry", "message": "x"}]
    body = {"error": {"code": "validation_error", "message": "invalid request", "fields": fields}}
    api.on("POST", "/jobs", lambda q, b: (422, body))
    with pytest.raises(ApiError) as info:
        client(api).submit("nope")
    assert (info.value.status, info.value.code) == (422, "validation_error")
    assert info.value.fields == fields


def test_a_throttled_request_is_retried_then_answered(api: FakeApi) -> None:
    # GIVEN an API that throttles twice
    answers = iter([(429, {"message": "Too Many Requests"})] * 2 + [(200, job())])
    api.on("GET", "/jobs/job-1", lambda q, _: next(answers))
    sleeps: list[float] = []
    # WHEN the job is read
    got = client(api, sleeps).get("job-1")
    # THEN it was asked three times, pausing between
    assert got.id == "job-1" and len(api.requests) == 3 and len(sleeps) == 2


def test_a_gateway_answer_that_is_not_json_is_still_a_clear_error(api: FakeApi) -> None:
    api.on("GET", "/jobs/job-1", lambda q, _: (403, b"<html>Forbidden</html>"))
    with pytest.raises(ApiError) as info:
        client(api).get("job-1")
    assert info.value.status == 403 and "Forbidden" in info.value.message


def test_an_unreachable_api_is_an_error_not_a_traceback() -> None:
    c = JobTracker("http://127.0.0.1:9", Bearer("t"))
    with pytest.raises(ApiError) as info:
        c.get("job-1")
    assert info.value.code == "unreachable"


def test_logs_follow_reads_until_the_attempt_finished_and_nothing_more_came(api: FakeApi) -> None:
    # GIVEN lines arriving over three reads of a running attempt, then it finishes
    pages = iter(
        [
            ([{"at": "t1", "message": "a"}], "T1", False),
            ([], "T1", False),
            ([{"at": "t2", "message": "b"}], "T2", False),
            ([], "T2", True),
        ]
    )

    def read(query: dict[str, list[str]], _: Any) -> Answer:
        events, token, finished = next(pages)
        return 200, {"job_id": "job-1", "attempt": 1, "logs": None, "events": events,
                     "next_token": token, "finished": finished}  # fmt: skip

    api.on("GET", "/jobs/job-1/logs", read)
    # WHEN followed
    lines = [line.message for line in client(api).logs("job-1", follow=True)]
    # THEN every line once, and each read continued from the last token
    assert lines == ["a", "b"], lines
    tokens = [r["query"].get("next_token", [None])[0] for r in api.requests]
    assert tokens == [None, "T1", "T1", "T2"], tokens


def test_requests_are_signed_with_sigv4_for_execute_api(api: FakeApi) -> None:
    api.on("GET", "/jobs/job-1", lambda q, _: (200, job()))
    c = JobTracker(api.url, SigV4.static("AKIDEXAMPLE", "secret", "eu-west-1"))
    c.get("job-1")
    auth = api.requests[0]["headers"]["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), auth
    assert "/eu-west-1/execute-api/aws4_request" in auth, auth
    assert "X-Amz-Date" in api.requests[0]["headers"]


def test_rerun_submits_the_old_jobs_submission_again(api: FakeApi) -> None:
    api.on("GET", "/jobs/job-1", lambda q, _: (200, job(status="FAILED")))
    api.on("POST", "/jobs", lambda q, b: (201, job("job-2", "STARTING")))
    new = client(api).rerun("job-1")
    sent = api.requests[-1]["body"]
    assert new.id == "job-2"
    assert sent == {
        "definition": "demo",
        "parameters": {"n": 1},
        "retry": {"max_attempts": 2},
        "tags": {"team": "x"},
    }, sent


# ---- the CLI ---------------------------------------------------------------------------------


def run_cli(api: FakeApi, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), client=client(api), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("status", ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"])
def test_watch_exits_with_the_code_of_the_jobs_final_status(api: FakeApi, status: str) -> None:
    api.on("GET", "/jobs/job-1", lambda q, _: (200, job(status=status)))
    code, _, _ = run_cli(api, "watch", "job-1")
    assert code == EXIT_CODES[status], (status, code)
    assert (code == 0) == (status == "SUCCEEDED"), "only success exits 0"


def test_cli_prints_the_apis_message_and_fields_not_a_traceback(api: FakeApi) -> None:
    fields = [{"field": "definition", "message": "unknown"}, {"field": "timeout_seconds",
              "message": "must be >= 1"}]  # fmt: skip
    body = {"error": {"code": "validation_error", "message": "invalid request", "fields": fields}}
    api.on("POST", "/jobs", lambda q, b: (422, body))
    code, _, err = run_cli(api, "submit", "nope", "--timeout", "0")
    assert code == EXIT_CODES["API_ERROR"]
    assert "error (422): invalid request" in err and "timeout_seconds: must be >= 1" in err, err
    assert "Traceback" not in err


def test_cli_json_output_is_the_apis_job(api: FakeApi) -> None:
    api.on("GET", "/jobs/job-1", lambda q, _: (200, job()))
    code, out, _ = run_cli(api, "--output", "json", "get", "job-1")
    assert code == 0 and json.loads(out)["id"] == "job-1"


def test_cli_submit_reads_parameters_env_and_command(api: FakeApi) -> None:
    api.on("POST", "/jobs", lambda q, b: (201, job()))
    run_cli(api, "submit", "demo", "--parameters", '{"rows": 3}', "--env", "A=1",
            "--command", "python -m job --x 'a b'", "--idempotency-key", "k1")  # fmt: skip
    request = api.requests[-1]
    assert request["body"] == {
        "definition": "demo",
        "parameters": {"rows": 3},
        "environment": {"A": "1"},
        "command": ["python", "-m", "job", "--x", "a b"],
    }, request["body"]
    assert request["headers"]["Idempotency-Key"] == "k1"


def test_cli_rejects_a_malformed_env_pair_before_calling_the_api(api: FakeApi) -> None:
    code, _, err = run_cli(api, "submit", "demo", "--env", "NOEQUALS")
    assert code == 2 and "--env: expected KEY=VALUE" in err, err
    assert api.requests == [], "nothing was sent"


def test_cli_schedules_shows_each_schedules_next_tick_and_last_runs(api: FakeApi) -> None:
    # GIVEN an API with one schedule that ran twice
    nightly = {
        "name": "nightly", "scheduler_name": "stack-nightly", "group": "stack-jobs",
        "description": None, "expression": "cron(0 2 * * ? *)", "timezone": "UTC",
        "state": "ENABLED", "overlap": "Forbid", "definition": "demo",
        "next_tick": "2026-11-25T02:00:00.000Z", "problem": None,
        "last_runs": [{**summary(2), "status": "SUCCEEDED"}, {**summary(1), "status": "FAILED"}],
        "links": {"jobs": "/jobs?schedule=nightly"},
    }  # fmt: skip
    api.on("GET", "/schedules", lambda q, b: (200, {"schedules": [nightly]}))
    out = io.StringIO()
    # WHEN `jobtracker schedules --runs 2` runs
    assert main(["schedules", "--runs", "2"], client(api), out) == 0
    # THEN it asked for two runs and shows the schedule's line
    assert api.requests[0]["query"] == {"runs": ["2"]}
    line = out.getvalue().splitlines()[1]
    for part in (
        "nightly",
        "cron(0 2 * * ? *) UTC",
        "Forbid",
        "2026-11-25T02:00",
        "SUCCEEDED FAILED",
    ):
        assert part in line, line


def schedule(state: str) -> dict[str, Any]:
    return {
        "name": "nightly", "scheduler_name": "stack-nightly", "group": "stack-jobs",
        "description": None, "expression": "cron(0 2 * * ? *)", "timezone": "UTC",
        "state": state, "overlap": "Forbid", "definition": "demo",
        "next_tick": None if state == "DISABLED" else "2026-11-25T02:00:00.000Z",
        "problem": None, "last_runs": [], "links": {"jobs": "/jobs?schedule=nightly"},
    }  # fmt: skip


@pytest.mark.parametrize(("action", "state"), [("pause", "DISABLED"), ("resume", "ENABLED")])
def test_cli_schedules_pause_and_resume_post_the_named_schedule_and_show_it(
    api: FakeApi, action: str, state: str
) -> None:
    # GIVEN an API that pauses and resumes the nightly schedule
    api.on("POST", f"/schedules/nightly/{action}", lambda q, b: (200, schedule(state)))
    out = io.StringIO()
    # WHEN `jobtracker schedules pause|resume nightly` runs
    assert main(["schedules", action, "nightly"], client(api), out) == 0
    # THEN it posted that route and shows the schedule as it is now
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("POST", f"/schedules/nightly/{action}")
    ]
    line = out.getvalue().splitlines()[1]
    assert line.startswith("nightly") and ("paused" if action == "pause" else "2026-11-25") in line


def test_cli_schedules_run_prints_the_job_it_made(api: FakeApi) -> None:
    # GIVEN an API whose run now of "nightly" made a job
    made = job("job-snow")
    api.on("POST", "/schedules/nightly/run", lambda q, b: (201, made))
    out = io.StringIO()
    # WHEN `jobtracker schedules run nightly -o json` runs
    assert main(["schedules", "run", "nightly", "-o", "json"], client(api), out) == 0
    # THEN it prints that job
    assert json.loads(out.getvalue())["id"] == "job-snow"


def test_cli_schedules_run_refused_by_the_overlap_policy_exits_with_the_apis_error(
    api: FakeApi,
) -> None:
    # GIVEN an API that refuses the run (Forbid, a run still active)
    refusal = {"error": {"code": "conflict", "message": "schedule nightly: not run, its run"
                         " job-1 is still active"}}  # fmt: skip
    api.on("POST", "/schedules/nightly/run", lambda q, b: (409, refusal))
    # WHEN it is run now THEN the CLI says why and exits as an API error
    code, _, err = run_cli(api, "schedules", "run", "nightly")
    assert code == EXIT_CODES["API_ERROR"], code
    assert "error (409): schedule nightly: not run" in err, err


def test_cli_definitions_lists_each_definition_with_its_size_and_limit(api: FakeApi) -> None:
    # GIVEN an API with two job definitions, one with a running limit
    demo = {
        "name": "demo", "cpu": 256, "memory": 512, "architecture": "ARM64",
        "allow_command_override": False, "max_running": None, "timeout_seconds": None,
        "links": {"jobs": "/jobs?definition=demo"},
    }  # fmt: skip
    limited = {**demo, "name": "demo-limited", "max_running": 2}
    api.on("GET", "/definitions", lambda q, b: (200, {"definitions": [demo, limited]}))
    out = io.StringIO()
    # WHEN `jobtracker definitions` runs
    assert main(["definitions"], client(api), out) == 0
    # THEN each definition has its line, with its size and its running limit
    lines = out.getvalue().splitlines()
    assert "demo" in lines[1] and "0.25 vCPU, 0.5 GB" in lines[1], lines
    assert lines[2].split()[0] == "demo-limited" and " 2 " in lines[2], lines


@pytest.mark.parametrize(
    ("argv", "output", "api"),
    [
        (["-o", "json", "--api", "http://a", "list"], "json", "http://a"),
        (["list", "-o", "json", "--api", "http://a"], "json", "http://a"),
        (["submit", "demo", "--output", "json"], "json", None),
        (["--api", "http://a", "list", "--api", "http://b"], "table", "http://b"),
        (["-o", "json", "list", "-o", "table"], "table", None),
        (["list"], "table", None),
    ],
    ids=["before", "after", "after a positional", "later wins", "later output wins", "default"],
)
def test_global_options_are_taken_before_or_after_the_command(
    argv: list[str], output: str, api: str | None
) -> None:
    # WHEN the global options are given before, after, or on both sides of the command
    args = parser().parse_args(argv)
    # THEN each takes the value given last, or its default
    assert (args.output, args.api) == (output, api), vars(args)


def test_cli_list_passes_its_tag_filter_to_the_api(api: FakeApi) -> None:
    # GIVEN the API's job list
    api.on("GET", "/jobs", lambda q, _: (200, {"jobs": [summary(1)], "next_token": None}))
    # WHEN the CLI lists the jobs tagged team=data
    code, _, _ = run_cli(api, "list", "--tag", "team=data")
    # THEN the API was asked for that tag
    assert code == 0
    assert api.requests[0]["query"]["tag"] == ["team=data"], api.requests[0]["query"]


def test_cli_get_shows_the_schedule_and_tick_a_job_was_made_by(api: FakeApi) -> None:
    # GIVEN a job a schedule's tick made
    made = {**job("job-s1"), "schedule": "nightly", "scheduled_time": "2026-11-25T02:00:00Z"}
    api.on("GET", "/jobs/job-s1", lambda q, b: (200, made))
    out = io.StringIO()
    # WHEN `jobtracker get` shows it THEN it names the schedule and the tick's time
    assert main(["get", "job-s1"], client(api), out) == 0
    assert "schedule    nightly @ 2026-11-25T02:00:00Z" in out.getvalue(), out.getvalue()

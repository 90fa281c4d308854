"""`jobtracker`: the command line of the jobtracker API (built on the Python client).

    jobtracker submit DEFINITION [--parameters JSON|@file] [--env K=V ...] [--watch]
    jobtracker get JOB_ID | list | cancel JOB_ID | rerun JOB_ID | watch JOB_ID | logs JOB_ID
    jobtracker schedules [--runs N] | schedules pause|resume|run NAME | definitions

Human tables by default, `--output json` everywhere. `watch` (and `submit --watch`) exits 0
only when the job SUCCEEDED, so it can gate a pipeline; see EXIT_CODES.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from jobtracker.edge.pages import JOBS_PAGE, SCHEDULE_RUNS
from jobtracker.edge.views import DefinitionView, JobSummary, JobView, LogLine, ScheduleView
from jobtracker_client.client import TERMINAL, ApiError, JobTracker, WaitTimeout

# What `watch` exits with, by the job's final status (and when it could not tell).
EXIT_CODES: dict[str, int] = {
    "SUCCEEDED": 0,
    "FAILED": 1,
    # 2: usage errors (argparse)
    "TIMED_OUT": 3,
    "CANCELLED": 4,
    "WAIT_TIMEOUT": 5,  # --wait-timeout passed; the job goes on
    "API_ERROR": 6,  # the API refused the request or could not be reached
}


class CliError(Exception):
    pass


def _json_arg(value: str, name: str) -> Any:
    """JSON given inline, or @path to a file holding it."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text()
        except OSError as exc:
            raise CliError(f"{name}: cannot read {value[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{name}: not valid JSON ({exc})") from None


def _pairs(values: list[str] | None, name: str) -> dict[str, str] | None:
    if not values:
        return None
    out = {}
    for item in values:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise CliError(f"{name}: expected KEY=VALUE, got {item!r}")
        out[key] = val
    return out


def _command(value: str | None) -> list[str] | None:
    if value is None:
        return None
    if value.lstrip().startswith("["):
        parsed = _json_arg(value, "--command")
        if not isinstance(parsed, list):
            raise CliError("--command: a JSON list of strings, or a shell-quoted string")
        return [str(p) for p in parsed]
    return shlex.split(value)


# ---- output ------------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _duration(start: str | None, end: str | None) -> str:
    from jobtracker.core.domain import parse_iso

    a, b = parse_iso(start), parse_iso(end)
    if a is None or b is None:
        return ""
    seconds = (b - a).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _usd(value: float | None) -> str:
    return "" if value is None else f"${value:.6f}"


def print_job(job: JobView, out: TextIO) -> None:
    reason = f" ({job.status_reason})" if job.status_reason else ""
    out.write(f"{job.id}  {job.status}{reason}\n")
    rows: list[Sequence[Any]] = [
        ("definition", job.definition),
        ("created", job.created_at),
        ("finished", job.finished_at or "-"),
        ("cost", _usd(job.cost_usd) or "-"),
    ]
    if job.schedule:
        rows.insert(1, ("schedule", f"{job.schedule} @ {job.scheduled_time}"))
    if job.parent_id:
        rows.insert(1, ("array", f"index {job.array_index} of {job.parent_id}"))
    if job.array:
        window = f", {job.array.max_running} at once" if job.array.max_running else ""
        rows.insert(1, ("array", f"{job.array.size} children{window}"))
        rows.insert(2, ("children", array_progress(job)))
    _table(rows, out)
    print_dependencies(job, out)
    if job.array:
        out.write(f"\nchildren: jobtracker children {job.id}\n")
    if not job.attempts:
        return
    out.write("\n")
    rows = [("#", "STATUS", "OUTCOME", "EXIT", "STOP CODE", "RULE", "RAN", "COST")]
    for a in job.attempts:
        exits = ",".join("-" if c.exit_code is None else str(c.exit_code) for c in a.containers)
        ran = _duration(a.started_at, a.stopped_at)
        rows.append(
            (a.number, a.status, a.outcome, exits, a.stop_code, a.rule, ran, _usd(a.cost_usd))
        )
    _table(rows, out)
    for a in job.attempts:
        if a.stopped_reason and a.outcome not in (None, "succeeded"):
            out.write(f"\nattempt {a.number}: {a.stopped_reason}\n")
        if a.diagnosis:
            out.write(f"  what to do: {a.diagnosis}\n")
    newest = job.attempts[-1]
    if newest.logs:
        out.write(f"\nlogs: jobtracker logs {job.id}   ({newest.logs.console_url})\n")


def print_dependencies(job: JobView, out: TextIO) -> None:
    """What the job waits on (each with its status and whether its condition is met) and what
    waits on it, each a `jobtracker get` away."""
    if job.depends_on:
        out.write("\ndepends on:\n")
        marks = {True: "met", False: "never met", None: "waiting"}
        rows: list[Sequence[Any]] = [("JOB", "CONDITION", "STATUS", "")]
        for d in job.depends_on:
            mode = f" ({d.mode})" if d.mode != "job" else ""
            rows.append((d.job_id, d.condition + mode, d.status or "-", marks[d.met]))
        _table(rows, out)
    if job.dependents and job.dependents.jobs:
        out.write("\ndependents:\n")
        _table([("JOB", "STATUS")] + [(j.id, j.status) for j in job.dependents.jobs], out)
        if job.dependents.next_token:
            out.write(f"(more: jobtracker dependents {job.id})\n")
    if job.depends_on or job.dependents:
        out.write("(each: jobtracker get JOB)\n")


def array_progress(job: JobView) -> str:
    """An array's children: done/total, then the count of each status that has any."""
    assert job.array is not None
    counts = job.array.summary.model_dump()
    done = sum(counts[s] for s in ("SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"))
    parts = [f"{n} {s}" for s, n in counts.items() if n]
    return f"{done}/{job.array.size} done: " + ", ".join(parts)


def print_list(jobs: list[JobSummary], out: TextIO) -> None:
    rows: list[Sequence[Any]] = [("ID", "STATUS", "DEFINITION", "ATTEMPT", "CREATED", "SCHEDULE")]
    rows += [
        (j.id, j.status, j.definition, j.attempt, j.created_at, j.schedule or "") for j in jobs
    ]
    _table(rows, out)


def print_schedules(schedules: list[ScheduleView], out: TextIO) -> None:
    rows: list[Sequence[Any]] = [("SCHEDULE", "EXPRESSION", "OVERLAP", "NEXT TICK", "LAST RUNS")]
    for s in schedules:
        runs = " ".join(r.status for r in s.last_runs) or "-"
        next_tick = s.next_tick or ("paused" if s.state != "ENABLED" else "-")
        rows.append((s.name, f"{s.expression} {s.timezone}", s.overlap or "?", next_tick, runs))
    _table(rows, out)
    for s in schedules:
        if s.problem:
            out.write(f"\n{s.name}: {s.problem}\n")


def print_definitions(definitions: list[DefinitionView], out: TextIO) -> None:
    rows: list[Sequence[Any]] = [("DEFINITION", "SIZE", "MAX RUNNING", "COMMAND OVERRIDE")]
    for d in definitions:
        size = f"{d.cpu / 1024:g} vCPU, {d.memory / 1024:g} GB" if d.cpu and d.memory else "-"
        limit = "-" if d.max_running is None else str(d.max_running)
        rows.append((d.name, size, limit, "allowed" if d.allow_command_override else "no"))
    _table(rows, out)


def _emit(args: argparse.Namespace, out: TextIO, value: Any, human: Callable[[], None]) -> None:
    if args.output == "json":
        out.write(json.dumps(value, indent=2) + "\n")
    else:
        human()


# ---- watch -------------------------------------------------------------------------------------


class Progress:
    """Live status on a terminal (one line, rewritten); plain lines elsewhere (CI logs)."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.started = time.monotonic()
        self.width = 0

    def __call__(self, job: JobView) -> None:
        elapsed = time.monotonic() - self.started
        reason = f" - {job.status_reason}" if job.status_reason else ""
        where = array_progress(job) if job.array else f"attempt {job.attempt}"
        line = f"{job.id}  {job.status}  {where}{reason}  [{elapsed:.0f}s]"
        if self.live:
            self.out.write("\r" + line.ljust(self.width))
            self.width = len(line)
            if job.status in TERMINAL:
                self.out.write("\n")
        else:
            stamp = time.strftime("%H:%M:%S")
            self.out.write(f"{stamp} {line}\n")
        self.out.flush()


def watch(client: JobTracker, args: argparse.Namespace, job_id: str, out: TextIO) -> int:
    progress = Progress(sys.stderr, sys.stderr.isatty()) if args.output != "json" else None
    try:
        job = client.wait(job_id, timeout=args.wait_timeout, on_change=progress)
    except WaitTimeout as exc:
        last = exc.job
        _emit(args, out, last.model_dump(), lambda: print_job(last, out))
        sys.stderr.write(f"still {last.status} after {args.wait_timeout}s; the job goes on\n")
        return EXIT_CODES["WAIT_TIMEOUT"]
    _emit(args, out, job.model_dump(), lambda: print_job(job, out))
    return EXIT_CODES.get(job.status, EXIT_CODES["API_ERROR"])


# ---- commands ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, client: JobTracker, out: TextIO) -> int:
    if args.cmd == "submit":
        parameters = _json_arg(args.parameters, "--parameters") if args.parameters else None
        job = client.submit(
            args.definition,
            parameters,
            environment=_pairs(args.env, "--env"),
            command=_command(args.command),
            retry=_json_arg(args.retry, "--retry") if args.retry else None,
            timeout_seconds=args.timeout,
            tags=_pairs(args.tag, "--tag"),
            idempotency_key=args.idempotency_key,
            array=_array(args),
            depends_on=_after(args.after),
        )
        if args.watch:
            sys.stderr.write(f"submitted {job.id}\n")
            return watch(client, args, job.id, out)
        _emit(args, out, job.model_dump(), lambda: print_job(job, out))
    elif args.cmd == "get":
        job = client.get(args.job_id)
        _emit(args, out, job.model_dump(), lambda: print_job(job, out))
    elif args.cmd == "list":
        jobs = list(
            client.list(args.status, args.definition, args.schedule, limit=args.limit, tag=args.tag)
        )
        _emit(args, out, [j.model_dump() for j in jobs], lambda: print_list(jobs, out))
    elif args.cmd == "children":
        kids = list(client.children(args.job_id, args.status, limit=args.limit))
        _emit(args, out, [j.model_dump() for j in kids], lambda: print_children(kids, out))
    elif args.cmd == "dependents":
        found = list(client.dependents(args.job_id, limit=args.limit))
        _emit(args, out, [j.model_dump() for j in found], lambda: print_list(found, out))
    elif args.cmd == "cancel":
        job = client.cancel(args.job_id, args.reason)
        _emit(args, out, job.model_dump(), lambda: print_job(job, out))
    elif args.cmd == "rerun":
        job = client.retry_failed(args.job_id) if args.failed else client.rerun(args.job_id)
        if args.watch:
            what = "its failed children run again" if args.failed else f"a rerun of {args.job_id}"
            sys.stderr.write(f"submitted {job.id} ({what})\n")
            return watch(client, args, job.id, out)
        _emit(args, out, job.model_dump(), lambda: print_job(job, out))
    elif args.cmd == "watch":
        return watch(client, args, args.job_id, out)
    elif args.cmd == "schedules" and args.action == "run":
        job = client.run_schedule(args.name)
        if args.watch:
            sys.stderr.write(f"submitted {job.id} (a run of {args.name})\n")
            return watch(client, args, job.id, out)
        _emit(args, out, job.model_dump(), lambda: print_job(job, out))
    elif args.cmd == "schedules" and args.action in ("pause", "resume"):
        change = client.pause_schedule if args.action == "pause" else client.resume_schedule
        changed = change(args.name)
        _emit(args, out, changed.model_dump(), lambda: print_schedules([changed], out))
    elif args.cmd == "schedules":
        found = client.schedules(args.runs)
        _emit(
            args,
            out,
            [s.model_dump() for s in found],
            lambda: print_schedules(found, out),
        )
    elif args.cmd == "definitions":
        known = client.definitions()
        _emit(args, out, [d.model_dump() for d in known], lambda: print_definitions(known, out))
    elif args.cmd == "console":
        return serve_console(client, args.port, err=sys.stderr)
    elif args.cmd == "logs":
        for line in client.logs(args.job_id, args.attempt, follow=args.follow):
            write_line(args, out, line)
    return 0


def serve_console(client: JobTracker, port: int, err: TextIO) -> int:
    """The web console on localhost, signing each call here: credentials stay in this process."""
    from jobtracker_console.server import Console

    console = Console(client, port=port).start()
    err.write(f"jobtracker console: open {console.link}\n(Ctrl-C stops it)\n")
    err.flush()
    try:
        console.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        console.stop()
    return 0


def write_line(args: argparse.Namespace, out: TextIO, line: LogLine) -> None:
    if args.output == "json":
        out.write(json.dumps(line.model_dump()) + "\n")
    else:
        out.write(f"{line.at}  {line.message}\n")
    out.flush()


def global_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    """The options every command takes, before or after its name (as the AWS CLI and kubectl
    take them). After the name they default to SUPPRESS: absent there, the value given before
    the name (or the default) stands; given in both places, the later one wins."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    where = p.add_argument_group("where the API is (default: the local stack that is running)")
    where.add_argument("--api", default=default(None), help="the API's URL (or JOBTRACKER_API)")
    where.add_argument(
        "--stack", default=default(None), help="a CloudFormation stack whose ApiUrl output to use"
    )
    where.add_argument(
        "--region", default=default(None), help="AWS region (default: as the AWS CLI finds it)"
    )
    where.add_argument("--profile", default=default(None), help="AWS profile to sign with")
    p.add_argument("--output", "-o", choices=("table", "json"), default=default("table"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jobtracker", description="jobtracker: jobs on ECS/Fargate")
    global_options(p, defaults=True)
    after = argparse.ArgumentParser(add_help=False)
    global_options(after, defaults=False)
    commands = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    class Commands:
        """Every command's parser takes the global options too."""

        @staticmethod
        def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
            return commands.add_parser(name, parents=[after], **kwargs)

    sub = Commands()

    def waits(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--wait-timeout", type=float, help="stop waiting after S seconds (exit 5)")

    s = sub.add_parser("submit", help="submit a job")
    s.add_argument("definition")
    s.add_argument("--parameters", help="JSON object, or @file")
    s.add_argument("--env", action="append", metavar="K=V", help="environment (repeatable)")
    s.add_argument("--command", help="shell-quoted string or JSON list (if the definition allows)")
    s.add_argument("--retry", help="retry overrides: JSON object, or @file")
    s.add_argument("--timeout", type=int, metavar="S", help="the job's timeout in seconds")
    s.add_argument("--tag", action="append", metavar="K=V", help="tag (repeatable)")
    s.add_argument("--idempotency-key", help="the same key never makes a second job")
    s.add_argument("--array", type=int, metavar="N", help="an array job of N children (2-10000)")
    s.add_argument("--max-running", type=int, metavar="M", help="an array's children at once")
    s.add_argument(
        "--tolerated-failures", type=int, metavar="K", help="an array's failures still a success"
    )
    s.add_argument(
        "--after",
        action="append",
        metavar="ID[:CONDITION]",
        help="wait for job ID to end as CONDITION says: succeeded (default), finished, failed;"
        " ID:per_index or ID:CONDITION:per_index for an array on an array (repeatable)",
    )
    s.add_argument(
        "--sequential",
        nargs="?",
        const="succeeded",
        metavar="CONDITION",
        help="an array's child i waits for child i-1 (to succeed, or finish, or fail)",
    )
    s.add_argument("--watch", action="store_true", help="wait for the end; exit by its status")
    waits(s)
    g = sub.add_parser("get", help="one job with its attempts")
    g.add_argument("job_id")
    ls = sub.add_parser("list", help="jobs, newest first")
    ls.add_argument("--status")
    ls.add_argument("--definition")
    ls.add_argument("--schedule")
    ls.add_argument("--tag", help="KEY=VALUE: only jobs with that tag")
    ls.add_argument("--limit", type=int, default=JOBS_PAGE)
    ch = sub.add_parser("children", help="an array's children, in index order")
    ch.add_argument("job_id")
    ch.add_argument("--status")
    ch.add_argument("--limit", type=int, default=JOBS_PAGE)
    dp = sub.add_parser("dependents", help="the jobs that wait (or waited) on a job")
    dp.add_argument("job_id")
    dp.add_argument("--limit", type=int, default=JOBS_PAGE)
    c = sub.add_parser("cancel", help="cancel a job")
    c.add_argument("job_id")
    c.add_argument("--reason")
    r = sub.add_parser("rerun", help="submit a job again, as it was submitted")
    r.add_argument("job_id")
    r.add_argument(
        "--failed", action="store_true", help="an array: run its failed children again, in it"
    )
    r.add_argument("--watch", action="store_true")
    waits(r)
    w = sub.add_parser("watch", help="follow a job until it ends; exit by its status")
    w.add_argument("job_id")
    waits(w)
    sc = sub.add_parser(
        "schedules", help="the job schedules: next tick and latest runs; pause, resume, run now"
    )
    sc.add_argument(
        "--runs", type=int, default=SCHEDULE_RUNS, help="latest runs shown per schedule"
    )
    actions = sc.add_subparsers(dest="action", metavar="ACTION")
    named = "the name its jobs carry (the SCHEDULE column) or EventBridge Scheduler's"
    for action, text in (
        ("pause", "stop its ticks (its running jobs go on)"),
        ("resume", "fire its next tick again (missed ones are not caught up)"),
        ("run", "its tick now, with its overlap policy; prints the job"),
    ):
        a = actions.add_parser(action, parents=[after], help=text)
        a.add_argument("name", help=named)
        if action == "run":
            a.add_argument("--watch", action="store_true", help="wait for the end; exit by it")
            waits(a)
    sub.add_parser("definitions", help="the job definitions a job may be submitted to")
    cs = sub.add_parser("console", help="the web console on localhost, for this API")
    cs.add_argument("--port", type=int, default=8765)
    lg = sub.add_parser("logs", help="an attempt's log lines")
    lg.add_argument("job_id")
    lg.add_argument("--attempt", type=int, help="default: the newest")
    lg.add_argument("--follow", "-f", action="store_true", help="keep reading while it runs")
    return p


def _after(values: list[str] | None) -> list[dict[str, str]] | None:
    """--after ID[:CONDITION][:per_index] as depends_on entries (the API checks the values)."""
    found = []
    for value in values or ():
        job_id, *rest = value.split(":")
        entry = {"job_id": job_id}
        for part in rest:
            entry["mode" if part == "per_index" else "condition"] = part
        found.append(entry)
    return found or None


def _array(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.array is None:
        if args.max_running is not None or args.tolerated_failures is not None:
            raise CliError("--max-running and --tolerated-failures need --array N")
        if args.sequential is not None:
            raise CliError("--sequential needs --array N")
        return None
    spec: dict[str, Any] = {"size": args.array}
    if args.sequential is not None:
        spec["sequential"] = True
        spec["sequential_condition"] = args.sequential
    if args.max_running is not None:
        spec["max_running"] = args.max_running
    if args.tolerated_failures is not None:
        spec["tolerated_failures"] = args.tolerated_failures
    return spec


def print_children(kids: list[JobSummary], out: TextIO) -> None:
    rows: list[Sequence[Any]] = [("INDEX", "ID", "STATUS", "ATTEMPT", "STARTED", "FINISHED")]
    rows += [
        (k.array_index, k.id, k.status, k.attempt, k.started_at or "", k.finished_at or "")
        for k in kids
    ]
    _table(rows, out)


def print_api_error(exc: ApiError, err: TextIO) -> None:
    status = f" ({exc.status})" if exc.status else ""
    err.write(f"error{status}: {exc.message}\n")
    if len(exc.fields) < 2:
        return  # the message already names the one field
    for field in exc.fields:
        if "field" in field:
            err.write(f"  {field['field']}: {field.get('message', '')}\n")


def main(
    argv: Sequence[str] | None = None,
    client: JobTracker | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    try:
        client = client or JobTracker.connect(args.api, args.stack, args.region, args.profile)
        return run(args, client, out)
    except CliError as exc:
        err.write(f"error: {exc}\n")
        return 2
    except ApiError as exc:
        print_api_error(exc, err)
        return EXIT_CODES["API_ERROR"]
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `jobtracker logs X | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())

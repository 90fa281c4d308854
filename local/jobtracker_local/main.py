"""`make run`: start the local stack, print where everything is, optionally run the demo, and
stop cleanly on Ctrl-C (every task process is killed; nothing is left behind)."""

from __future__ import annotations

import argparse
import faulthandler
import json
import shutil
import signal
import sys
import threading
from pathlib import Path

from jobtracker_client.endpoints import for_local
from jobtracker_console.server import Console

from jobtracker_local.ecs import (
    DEFAULT_LAUNCH_BURST,
    DEFAULT_LAUNCH_RATE,
    STOPPED_TASK_RETENTION_SECONDS,
)
from jobtracker_local.runtime import tune_process
from jobtracker_local.stack import REGION, LocalStack
from jobtracker_local.state import write_private

ROOT = Path(__file__).resolve().parents[2]


def demo_wanted(mode: str | None, kept: int) -> bool:
    """Whether to submit the demo jobs: `always` (--demo), or `fresh` (make run) only on a state
    that started empty, so a restart does not add five more each time."""
    return mode == "always" or (mode == "fresh" and kept == 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run jobtracker locally (no AWS account needed).")
    parser.add_argument("--port", type=int, default=8080, help="API port (0 = any free port)")
    parser.add_argument(
        "--backoff-scale",
        type=float,
        default=0.05,
        help="multiplies retry waits (BACKOFF_SCALE); 1 = production waits",
    )
    parser.add_argument("--work-dir", default=str(ROOT / ".local-stack"))
    parser.add_argument(
        "--state-dir",
        help="where jobs, attempts and the stack's keys outlive it (default: WORK_DIR/state)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="start empty: forget the state dir's jobs and keys"
    )
    parser.add_argument("--console-port", type=int, default=0, help="the web console's port")
    parser.add_argument(
        "--demo",
        nargs="?",
        const="always",
        choices=["always", "fresh"],
        help="submit the demo jobs and watch them; `fresh`: only when the state starts empty"
        " (what make run asks: a restart does not add five more jobs each time)",
    )
    parser.add_argument("--no-auth", action="store_true", help="accept requests without the token")
    parser.add_argument(
        "--verbose", action="store_true", help="the functions' logs on the console, not in a file"
    )
    parser.add_argument("--ready-file", help="write the endpoints as JSON here once ready")
    parser.add_argument(
        "--ecs-launch-rate",
        type=float,
        default=DEFAULT_LAUNCH_RATE,
        help="RunTask calls and task launches per second the local ECS allows (Fargate: 20)",
    )
    parser.add_argument(
        "--ecs-launch-burst",
        type=float,
        default=DEFAULT_LAUNCH_BURST,
        help="how many of them may come at once (Fargate: 100); beyond, ThrottlingException",
    )
    parser.add_argument(
        "--ecs-stopped-retention",
        type=float,
        default=STOPPED_TASK_RETENTION_SECONDS,
        metavar="SECONDS",
        help="how long the local ECS describes a stopped task (ECS: about an hour)",
    )
    args = parser.parse_args(argv)
    tune_process()  # before any thread (runtime.py)

    state_dir = Path(args.state_dir or Path(args.work_dir) / "state")
    if args.fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    stack = LocalStack(
        Path(args.work_dir),
        state_dir=state_dir,
        api_port=args.port,
        backoff_scale=args.backoff_scale,
        quiet=not args.verbose,
        auth=not args.no_auth,
        extra_env={
            "LAUNCH_BACKOFF_BASE_SECONDS": "1",
            "QUIET_AFTER_SECONDS": "30",
            "DECISION_GRACE_SECONDS": "10",
            # One account: the functions' launch governor keeps to the local ECS's limits.
            "LAUNCH_RATE": str(args.ecs_launch_rate),
            "LAUNCH_BURST": str(int(args.ecs_launch_burst)),
        },
        ecs_launch_rate=args.ecs_launch_rate,
        ecs_launch_burst=args.ecs_launch_burst,
        ecs_stopped_retention=args.ecs_stopped_retention,
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack.start()
    write_private(Path(args.work_dir) / "token", stack.token)
    endpoints = {
        "api": stack.api_url,
        "token": stack.token,
        "moto": f"http://127.0.0.1:{stack.moto_port}",
        "ecs": f"http://127.0.0.1:{stack.ecs_port}",
        "work_dir": args.work_dir,
        "region": REGION,
        # What the `jobtracker` client signs with (SigV4, as on AWS); 0600 like the token.
        "credentials": {
            "access_key_id": stack.credentials.access_key_id,
            "secret_access_key": stack.credentials.secret_access_key,
        },
    }
    # The console signs its calls as any client of this stack does (SigV4, like on AWS).
    console = Console(for_local(endpoints), port=args.console_port)
    console.start()
    endpoints["console"] = console.link
    # Where a client finds this stack (the `jobtracker` CLI looks here): gone once it stops.
    stack_file = Path(args.work_dir) / "stack.json"
    write_private(stack_file, json.dumps(endpoints))
    print("jobtracker local stack is up")
    kept = sum(stack.restored.values())
    print(f"  state      {state_dir}   ({kept} items kept from before; --fresh starts empty)")
    if args.demo == "fresh" and not demo_wanted(args.demo, kept):
        print("  demo       not run again: its jobs are in the kept state (make run ARGS=--demo)")
    print(f"  console    {console.link}")
    print(f"  API        {stack.api_url}   (SigV4 with the keys in {stack_file}, or")
    print(f"             header: Authorization: Bearer {stack.token})")
    print(f"  AWS (moto) {endpoints['moto']}   ECS (local) {endpoints['ecs']}")
    print(f"  API docs   {stack.api_url}/docs   (OpenAPI: {stack.api_url}/openapi.json)")
    print("  CLI        .venv/bin/jobtracker list   (finds this stack by itself)")
    print(f"  task logs  jobtracker logs JOB_ID, or {args.work_dir}/logs/<task id>.log")
    if not args.verbose:
        print(f"  functions' logs  {stack.functions_log}   (--verbose: on this console)")
    print(f"  try: curl -s -H 'Authorization: Bearer {stack.token}' {stack.api_url}/jobs")
    print("  Ctrl-C stops everything.", flush=True)
    if args.ready_file:  # written whole, then renamed: a reader never sees half of it
        write_private(Path(args.ready_file), json.dumps(endpoints))  # it holds the token
    if demo_wanted(args.demo, kept):
        from jobtracker_local.demo import run_demo

        threading.Thread(
            target=run_demo, args=(stack.api_url, stack.token, stack, stopping), daemon=True
        ).start()
    # A timed wait: a signal the kernel hands to another thread does not interrupt an untimed
    # lock wait, so the main thread would never get to run the handler.
    while not stopping.wait(0.2):
        pass
    print("stopping…", flush=True)
    faulthandler.dump_traceback_later(30, exit=True)  # a hung stop shows where, then exits
    stack_file.unlink(missing_ok=True)
    console.stop()
    stack.stop()
    faulthandler.cancel_dump_traceback_later()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

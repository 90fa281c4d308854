"""The local ECS's task processes, forked from a worker that imported once.

A task of the worker's own command (`python -m jobtracker_worker.main`) used to be a fresh
interpreter: each one spent most of its CPU (about 60 ms of its 65) starting Python and
importing, and the stack's process, large and threaded, paid for a full fork() to start it.
Here a small process (the zygote) imports the worker once; each task is a fork of it with the
task's environment, in a session of its own (its process group: StopTask's SIGTERM, the SIGKILL
after the stop timeout), stdin /dev/null, stdout and stderr into the pipe the stack reads, and
its exit code told back as a Popen's returncode (negative: killed by that signal).

    python -S -m jobtracker_local.zygote      (its stdin: the socket it takes requests on)

Only the standard library and the worker are imported here (-S, as in the slim image).

A request is one SOCK_SEQPACKET message: the task's environment as JSON, with two descriptors:
the write end of the task's output pipe and a socket for the answers ("pid N", then "exit C";
"error ERRNO TEXT" if the fork failed).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

MAX_REQUEST = 1 << 20  # an environment: the container overrides' 8 KB and this machine's
PR_SET_PDEATHSIG = 1
# A task's process shows its environment and command in /proc (ps e, tools that find a job's
# worker by JOB_ID): a fork shows the zygote's. The zygote starts with this much room in its
# environment, which each task overwrites with its own; a larger environment is Popen's.
ENVIRON_ROOM = 64 * 1024
SHOWN_COMMAND = ("-S", "-m", "jobtracker_worker.main")


def environ_block(env: dict[str, str]) -> bytes:
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items())


# ---- the zygote's side ---------------------------------------------------------------------


def load_prctl() -> Any:
    """libc's prctl (None where there is none): the zygote's and the local ECS's one way to
    have a child killed with its parent (PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _run_task(env: dict[str, str], output: int, zygote: int, prctl: Any) -> None:
    """In the forked child: become the task's process, run the worker, exit with its code."""
    code = 1
    try:
        os.setsid()  # its own group, as `start_new_session` gave it
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the zygote dies with the stack
        if os.getppid() != zygote:
            os._exit(1)  # the zygote died between fork and prctl
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has it
        os.dup2(output, 1)
        os.dup2(output, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # close_fds, as Popen does
        os.environ.clear()  # nothing refers to the zygote's own strings any more
        os.environ.update(env)
        _show(env)
        from jobtracker_worker import main as worker

        sys.argv = [str(worker.__file__)]
        code = worker.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code & 0xFF)


def _show(env: dict[str, str]) -> None:
    """Overwrite the zygote's command line and environment, where the kernel reads them for
    /proc/PID/cmdline and environ, with the task's (what `python -S -m ...main` would show)."""
    import ctypes

    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    arg_start, arg_end, env_start, env_end = (int(f) for f in fields[45:49])
    command = b"\0".join(part.encode() for part in (sys.executable, *SHOWN_COMMAND)) + b"\0"
    for start, end, text in (
        (arg_start, arg_end, command),
        (env_start, env_end, environ_block(env)),
    ):
        if len(text) <= end - start:
            ctypes.memmove(start, text.ljust(end - start, b"\0"), end - start)


def _answer(sock: socket.socket, line: str) -> None:
    with contextlib.suppress(OSError):  # the stack stopped listening: nothing to tell
        sock.sendall(line.encode() + b"\n")


def serve(control: socket.socket) -> None:
    """Fork a task per request until the control socket closes; tell each one's exit."""
    prctl = load_prctl()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
    answers: dict[int, socket.socket] = {}
    while True:
        ready, _, _ = select.select([control.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(answers)
        if control.fileno() not in ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(control, MAX_REQUEST, 2)
        except InterruptedError:
            continue
        if not data:
            return  # the stack closed it: it is stopping
        output, status = fds
        answer = socket.socket(fileno=status)
        try:
            pid = os.fork()
        except OSError as exc:
            _answer(answer, f"error {exc.errno} {exc.strerror}")
            answer.close()
            os.close(output)
            continue
        if pid == 0:
            _run_task(json.loads(data), output, os.getppid(), prctl)
        os.close(output)
        answers[pid] = answer
        _answer(answer, f"pid {pid}")


def _reap(answers: dict[int, socket.socket]) -> None:
    while answers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        answer = answers.pop(pid, None)
        if answer is not None:
            _answer(answer, f"exit {os.waitstatus_to_exitcode(status)}")
            answer.close()


def main() -> None:
    from jobtracker_worker import main as worker  # noqa: F401  (imported once, for every task)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the stack's; it closes our socket
    serve(socket.socket(fileno=0))


# ---- the stack's side -----------------------------------------------------------------------


class Forked:
    """A task process the zygote forked, as the local ECS uses a Popen: pid, stdout, poll,
    wait, send_signal."""

    def __init__(self, pid: int, stdout: IO[bytes], answers: IO[str]) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self._answers = answers
        self.returncode: int | None = None

    def poll(self) -> int | None:
        # Known once wait() has read it: the zygote tells it the moment it reaps the task.
        return self.returncode

    def wait(self) -> int:
        """The exit code (only the task's own thread waits)."""
        if self.returncode is None:
            line = self._answers.readline().split()
            # No answer: the zygote died (it is killed with the stack), so did the task.
            self.returncode = int(line[1]) if line[:1] == ["exit"] else -signal.SIGKILL
            self._answers.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


class Zygote:
    """The zygote process, started from a thread that outlives every task (the main thread):
    it is killed when that thread's process dies (PR_SET_PDEATHSIG), and its tasks with it."""

    def __init__(self, worker_path: Path, preexec: Any) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        local_path = Path(__file__).resolve().parents[1]
        env = {
            **os.environ,
            "PYTHONPATH": f"{worker_path}{os.pathsep}{local_path}",
            "JOBTRACKER_ZYGOTE_ROOM": "." * ENVIRON_ROOM,  # see ENVIRON_ROOM
        }
        # At most two malloc arenas, as the stack's own processes (runtime.py); each task,
        # a fork, keeps its parent's allocator. A task's environment is its own, as before.
        env.setdefault("MALLOC_ARENA_MAX", "2")
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-m", "jobtracker_local.zygote"],
            stdin=theirs.fileno(),
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
        )
        theirs.close()
        self.control = mine
        self.lock = threading.Lock()

    @staticmethod
    def takes(env: dict[str, str]) -> bool:
        """An environment execve would take (Popen refuses a NUL byte, or `=` in a name) and
        that fits where the task shows it (ENVIRON_ROOM)."""
        plain = all(k and "=" not in k and "\0" not in k + v for k, v in env.items())
        return plain and len(environ_block(env)) <= ENVIRON_ROOM

    def spawn(self, env: dict[str, str]) -> Forked:
        """The task's process, or OSError as Popen raises it when it cannot start one."""
        read_end, write_end = os.pipe()
        mine, theirs = socket.socketpair()
        try:
            with self.lock:
                socket.send_fds(
                    self.control, [json.dumps(env).encode()], [write_end, theirs.fileno()]
                )
        except OSError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
            theirs.close()
        answers = mine.makefile("r", encoding="utf-8")
        mine.close()  # the file keeps the socket open
        line = answers.readline().split(maxsplit=2)
        if line[:1] != ["pid"]:
            answers.close()
            os.close(read_end)
            code = int(line[1]) if line[:1] == ["error"] else errno.EPIPE
            raise OSError(code, line[2] if len(line) > 2 else "the zygote is gone")
        return Forked(int(line[1]), os.fdopen(read_end, "rb"), answers)

    def stop(self) -> None:
        self.control.close()  # it returns from serve and exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    main()

"""How the local stack's own processes run (the stack's, moto's server's, the zygote's): set once,
at their start, before any thread.

- Memory: glibc gives each thread that allocates an arena of its own (up to 8 per core) and
  rarely hands their memory back. The stack's process runs a thread per task and per request,
  so over a burst of thousands of tasks its RSS grew by hundreds of MB of mostly free arena
  memory (a 10,000-child array: 114 MB to 612 MB; 334 MB with MALLOC_ARENA_MAX=2 set by
  hand). Two arenas are plenty for processes whose Python code runs one thread at a time
  anyway. The environment's MALLOC_ARENA_MAX, when set, wins.
- Latency: a thread coming back from a socket call (every AWS call is a few) waits for the GIL
  until the thread holding it has run for the switch interval (5 ms by default). In a process
  of dozens of threads that is most of a call's time: py-spy (--idle) showed an array's fan-out
  waiting for the GIL after send(), poll() and os.urandom() (botocore's invocation id) for a
  third of its time, and waiting for moto, itself as threaded, for half. A shorter interval
  hands the GIL back sooner; the threads that are busy computing lose a little to the switches.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

ARENA_MAX = "2"
M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
SWITCH_INTERVAL_SECONDS = 0.0005  # CPython's default: 0.005


def tune_process() -> None:
    """This process: at most ARENA_MAX malloc arenas (unless MALLOC_ARENA_MAX says otherwise),
    and the GIL handed on after SWITCH_INTERVAL_SECONDS."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    if "MALLOC_ARENA_MAX" in os.environ:
        return  # glibc read it at the process's start
    with contextlib.suppress(OSError, AttributeError):  # not glibc: its allocator, its ways
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, int(ARENA_MAX))


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a helper process the stack starts (moto's server, the zygote): the
    same arena limit, read by glibc as the process starts."""
    out = dict(os.environ if env is None else env)
    out.setdefault("MALLOC_ARENA_MAX", ARENA_MAX)
    return out

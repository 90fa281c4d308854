"""moto's server as the local stack runs it, in a process of its own:

    python -m jobtracker_local.moto_server PORT

The same application as `python -m moto.server`, minus costs that were much of its time under
a burst (profiled with py-spy):
- werkzeug's development server closes every connection, so each call paid a TCP connect and
  a new thread on both sides; waitress keeps connections alive on a fixed pool of threads;
- the lookup of which service a request is for listed moto's package folder on every request
  while holding the dispatcher's lock; the answer for a given host never changes.

And one fix: moto checks a write's condition and then applies it without a lock, so two writes
to one item on two threads could both pass their conditions (seen: a late RUNNING event put a
SUCCEEDED job back to RUNNING, its guard checked against the item before STOPPED was applied).
DynamoDB applies each write atomically; here DynamoDB's requests are taken one at a time.
"""

from __future__ import annotations

import sys
import threading
from functools import cache
from typing import Any

from moto import backends
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve


class Dispatcher(DomainDispatcherApplication):
    @cache  # noqa: B019 (one dispatcher for the process's lifetime)
    def get_backend_for_host(self, host: str | None) -> Any:
        return super().get_backend_for_host(host)


def atomic_dynamodb() -> None:
    """Every DynamoDB request of this process, one at a time (see above)."""
    one_at_a_time = threading.Lock()
    call_action = DynamoHandler.call_action

    def serialized(self: DynamoHandler) -> Any:
        with one_at_a_time:
            return call_action(self)

    DynamoHandler.call_action = serialized  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    port = int(argv[0])
    atomic_dynamodb()
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    # Threads: every queue poller long-polls one (about 25), the functions and the ECS need more.
    # Connections: every client keeps its own alive; past waitress's default limit (100) a new
    # one would wait for an idle one to time out, stalling a call for minutes.
    serve(
        Dispatcher(create_backend_app),
        host="127.0.0.1",
        port=port,
        threads=64,
        connection_limit=2000,
        channel_timeout=60,
        _quiet=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])

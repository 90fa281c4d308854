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

Then costs found by profiling the whole stack under a burst (py-spy, `--gil`), each answer the
same byte for byte:
- every item in a DynamoDB answer went through botocore's shapes attribute by attribute, ten
  alias lookups for each AttributeValue (a quarter of moto's time): plain ones are copied;
- every event a rule delivered built a JSONPath parser (a yacc table) for each input path;
- every request listed its handler class's methods with `inspect` to find its action;
- every UpdateItem parsed its update expression twice; the functions send a few dozen distinct
  ones (values are placeholders), and moto's validator works on a deep copy of the tree.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections import Counter
from functools import cache, lru_cache
from typing import Any

import jsonpath_ng.ext
import moto.core.responses
from moto import backends
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
    UpdateExpressionParser,
)
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


STRINGS = ("S", "N")
STRING_SETS = ("SS", "NS")
FLAGS = ("BOOL", "NULL")


def plain_attribute(value: Any) -> Any:
    """A DynamoDB AttributeValue (as moto's models give it: a dict of one type) as botocore's
    shapes serialize it; None for what they would change (binary is base64-encoded)."""
    if type(value) is not dict or len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    if kind in STRINGS:
        return value if type(inner) is str else None
    if kind in FLAGS:
        return value if type(inner) is bool else None
    if kind in STRING_SETS:
        ok = type(inner) is list and all(type(v) is str for v in inner)
        return {kind: list(inner)} if ok else None
    if kind == "M" and type(inner) is dict:
        members = {k: plain_attribute(v) for k, v in inner.items()}
        if all(type(k) is str for k in members) and None not in members.values():
            return {"M": members}
    if kind == "L" and type(inner) is list:
        items = [plain_attribute(v) for v in inner]
        if None not in items:
            return {"L": items}
    return None


def plain_dynamodb_items() -> None:
    """DynamoDB's AttributeValues serialized by plain_attribute when it can (see above)."""
    structure = BaseJSONSerializer._serialize_type_structure

    def serialize(
        self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        if key and shape.name == "AttributeValue":
            plain = plain_attribute(value)
            if plain is not None:
                serialized[self.get_serialized_name(shape, key)] = plain
                return
        structure(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize  # type: ignore[method-assign]


def cached_lookups() -> None:
    """What moto recomputed per request from inputs that never change (see above)."""
    # A parsed path is only read (find), never changed: one per distinct path.
    jsonpath_ng.ext.parse = lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    # Handler classes do not change once imported.
    moto.core.responses.method_names_from_class = cache(moto.core.responses.method_names_from_class)
    # A parsed update expression is only read (its clauses listed) or deep-copied to validate.
    parse_update = UpdateExpressionParser.make.__func__
    UpdateExpressionParser.make = classmethod(lru_cache(maxsize=1024)(parse_update))  # type: ignore[arg-type]


def counted(app: Any, path: str) -> Any:
    """The app, counting its requests by action (X-Amz-Target, or the query's Action): written
    to `path` when the server stops. For profiling (JOBTRACKER_MOTO_COUNTS=PATH)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def app_counting(environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET") or ""
        if not target:
            query = environ.get("QUERY_STRING", "")
            action = next((q[7:] for q in query.split("&") if q.startswith("Action=")), "")
            target = f"{environ.get('HTTP_HOST', '')}:{action or environ.get('PATH_INFO', '')}"
        with lock:
            counts[target] += 1
        return app(environ, start_response)

    def write() -> None:
        with open(path, "w") as out:
            for key, n in counts.most_common():
                out.write(f"{n}\t{key}\n")

    atexit.register(write)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # atexit runs on a clean exit only
    return app_counting


def main(argv: list[str]) -> None:
    port = int(argv[0])
    atomic_dynamodb()
    plain_dynamodb_items()
    cached_lookups()
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    # Threads: every queue poller long-polls one (about 25), the functions and the ECS need more.
    # Connections: every client keeps its own alive; past waitress's default limit (100) a new
    # one would wait for an idle one to time out, stalling a call for minutes.
    app: Any = Dispatcher(create_backend_app)
    if os.environ.get("JOBTRACKER_MOTO_COUNTS"):
        app = counted(app, os.environ["JOBTRACKER_MOTO_COUNTS"])
    serve(
        app,
        host="127.0.0.1",
        port=port,
        threads=64,
        connection_limit=2000,
        channel_timeout=60,
        _quiet=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])

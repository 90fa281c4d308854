"""AWS clients, created lazily and cached (never at import time: moto and the local stack
must be in place first, and a cold start should pay only for the clients it uses).

botocore directly, not boto3: the low-level clients are the same, without boto3's own imports
(about 15 ms of every cold start)."""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
# botocore's shared session is not safe to create clients from on several threads at once (the
# local stack runs a function's instances as threads of one process).
_creating = threading.Lock()


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    import botocore.session  # imported here: keeps the SDK off the import path of pure modules

    with _creating:
        if service not in _clients:
            _clients[service] = botocore.session.get_session().create_client(service)
        return _clients[service]


def reset_clients() -> None:
    with _creating:
        _clients.clear()

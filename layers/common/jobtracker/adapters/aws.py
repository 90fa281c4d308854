"""AWS clients, created lazily and cached (never at import time: moto and the local stack
must be in place first, and a cold start should pay only for the clients it uses).

botocore directly, not boto3: the low-level clients are the same, without boto3's own imports
(about 15 ms of every cold start)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import botocore.session  # imported here: keeps the SDK off the import path of pure modules

    return botocore.session.get_session().create_client(service)


def reset_clients() -> None:
    client.cache_clear()

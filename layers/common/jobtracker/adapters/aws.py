"""boto3 clients, created lazily and cached (never at import time: moto and the local stack
must be in place first, and a cold start should pay only for the clients it uses)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3  # imported here: keeps boto3 off the import path of pure modules

    return boto3.session.Session().client(service)


def reset_clients() -> None:
    client.cache_clear()

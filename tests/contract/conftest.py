"""The contract tier: the local stack as a process, and a requests session that signs every call
with SigV4 for execute-api, as API Gateway's IAM authorization expects."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import pytest
import requests
from jobtracker_client.client import SigV4

from tests.e2e.conftest import start_stack


class SigV4Auth(requests.auth.AuthBase):
    """Signs a prepared request with the client's signer (botocore underneath).

    Only host and x-amz-date are signed: Schemathesis sends generated header values (an
    Idempotency-Key full of odd characters, say) whose canonical form is not what we test here,
    and API Gateway checks only the headers a caller chose to sign."""

    def __init__(self, signer: SigV4) -> None:
        self.signer = signer

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.url = sigv4_query(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers.update(
            self.signer.headers(request.method or "GET", request.url or "", body, {})
        )
        return request


def sigv4_query(url: str) -> str:
    """The URL with its query in SigV4's one encoding, the same values.

    botocore signs a query as it finds it on the URL, while the receiver (API Gateway, the local
    front) decodes each name and value and encodes it again: `+` for a space (as requests
    writes it), or a character requests leaves bare, would sign one string and check another."""
    parts = urlsplit(url)
    pairs = []
    for item in parts.query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append(f"{_encode(name)}={_encode(value)}")
    return urlunsplit(parts._replace(query="&".join(pairs)))


def _encode(text: str) -> str:
    return quote(unquote_plus(text), safe="-_.~")


@dataclass
class ContractStack:
    api: str
    session: requests.Session


@pytest.fixture(scope="session")
def contract_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContractStack]:
    # The e2e tier's settings: retries' backoff scaled down so a failed attempt settles quickly.
    work = tmp_path_factory.mktemp("contract-stack")
    proc: subprocess.Popen[bytes]
    proc, info = start_stack(work, "--backoff-scale", "0.02")
    creds: dict[str, Any] = info["credentials"]
    session = requests.Session()
    session.auth = SigV4Auth(
        SigV4.static(creds["access_key_id"], creds["secret_access_key"], info["region"])
    )
    yield ContractStack(info["api"], session)
    session.close()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)

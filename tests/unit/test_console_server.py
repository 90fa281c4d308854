"""The console's server: the printed link is the login, the API passes only the console's
routes, and only its own static files are served."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest
from jobtracker_client.client import Bearer, JobTracker
from jobtracker_console.server import COOKIE, Console


class Recorder(JobTracker):
    def __init__(self) -> None:
        super().__init__("http://unused", Bearer("t"))
        self.calls: list[tuple[str, str]] = []

    def call(self, method: str, path: str, body: Any = None, query: Any = None) -> Any:
        self.calls.append((method, path))
        return {"ok": True}


@pytest.fixture
def console() -> Iterator[tuple[Console, Recorder]]:
    client = Recorder()
    running = Console(client).start()
    yield running, client
    running.stop()


def request(console: Console, method: str, path: str, cookie: str | None = None) -> Any:
    host, port = console.server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    conn.request(method, path, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    response = conn.getresponse()
    response.read()
    return response


def test_the_printed_link_sets_an_http_only_strict_cookie_and_leaves_the_address_bar(
    console: tuple[Console, Recorder],
) -> None:
    server, _ = console
    reply = request(server, "GET", "/?key=" + server.key)
    assert reply.status == 303 and reply.getheader("Location") == "/"
    cookie = reply.getheader("Set-Cookie")
    assert (
        f"{COOKIE}={server.key}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    )


def test_the_api_needs_the_links_cookie(console: tuple[Console, Recorder]) -> None:
    server, client = console
    assert request(server, "GET", "/api/jobs", cookie="wrong").status == 403
    assert request(server, "GET", "/api/jobs", cookie=server.key).status == 200
    assert client.calls == [("GET", "/jobs")], "only the authorised call reached the API"


def test_routes_the_console_does_not_use_are_not_passed_on(
    console: tuple[Console, Recorder],
) -> None:
    server, client = console
    assert request(server, "GET", "/api/admin", cookie=server.key).status == 404
    assert client.calls == []


def test_only_the_consoles_own_files_are_served(console: tuple[Console, Recorder]) -> None:
    server, _ = console
    assert request(server, "GET", "/app.js").status == 200
    assert request(server, "GET", "/../server.py").status == 404
    assert request(server, "GET", "/%2e%2e/server.py").status == 404

"""The console's server: static pages, and /api/* passed to the jobtracker API through the
Python client, which signs every call (SigV4 with the user's AWS credentials, or the local
stack's). Credentials never reach the browser.

The browser proves it is the user's with a key that is only in the printed link: opening
`/?key=...` sets an HttpOnly, SameSite=Strict cookie, and every /api call needs it (so another
site open in the same browser cannot drive the console's API).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jobtracker_client.client import ApiError, JobTracker

from jobtracker.core.domain import JobStatus
from jobtracker.edge.api import MAX_BODY_BYTES as MAX_BODY
from jobtracker.edge.api import route_methods
from jobtracker.edge.routes import ROUTERS

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "application/javascript", ".css": "text/css"}
COOKIE = "jobtracker_console"
# The job statuses, for the pages: the tracker's own list, never a copy in the script.
STATUSES_JS = (
    f"const STATUSES = {json.dumps([s.value for s in JobStatus])};\n"
    f"const TERMINAL = {json.dumps([s.value for s in JobStatus if s.terminal])};\n"
).encode()
# What the browser may ask of the API: the API's own routes (its routers), nothing else.
API_ROUTES = route_methods(ROUTERS)


class Console:
    def __init__(self, client: JobTracker, host: str = "127.0.0.1", port: int = 0) -> None:
        self.client = client
        self.key = secrets.token_urlsafe(24)
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="console", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def link(self) -> str:
        """The address to open: it carries the key (no password prompt)."""
        return f"{self.url}/?key={self.key}"

    def start(self) -> Console:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        console = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("X-Frame-Options", "DENY")
                self.send_header(
                    "Content-Security-Policy",
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
                )
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, payload: Any) -> None:
                self._send(status, json.dumps(payload).encode(), "application/json")

            def _authorised(self) -> bool:
                cookies = self.headers.get("Cookie") or ""
                for part in cookies.split(";"):
                    name, _, value = part.strip().partition("=")
                    if name == COOKIE and hmac.compare_digest(value, console.key):
                        return True
                return False

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                if parts.path.startswith("/api/"):
                    return self._api(parts.path[len("/api") :], parts.query)
                if self.command != "GET":
                    return self._json(405, {"error": {"code": "method_not_allowed"}})
                key = parse_qs(parts.query).get("key", [""])[0]
                if key and hmac.compare_digest(key, console.key):
                    # The key leaves the address bar at once: a cookie carries it from here.
                    return self._send(
                        303,
                        b"",
                        "text/plain",
                        Location="/",
                        Set_Cookie=f"{COOKIE}={console.key}; HttpOnly; SameSite=Strict; Path=/",
                    )
                if parts.path == "/statuses.js":
                    return self._send(200, STATUSES_JS, TYPES[".js"])
                name = "index.html" if parts.path in ("/", "/index.html") else parts.path[1:]
                path = (STATIC / name).resolve()
                if path.parent != STATIC or not path.is_file() or path.suffix not in TYPES:
                    return self._json(404, {"error": {"code": "not_found"}})
                self._send(200, path.read_bytes(), TYPES[path.suffix])

            def _api(self, path: str, query: str) -> None:
                if not self._authorised():
                    return self._json(
                        403,
                        {"error": {"code": "forbidden", "message": "open the console's link"}},
                    )
                if not any(
                    self.command in methods and re.match(pattern, path)
                    for pattern, methods in API_ROUTES.items()
                ):
                    return self._json(404, {"error": {"code": "not_found", "message": path}})
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    return self._json(413, {"error": {"code": "too_large"}})
                body = json.loads(self.rfile.read(length)) if length else None
                params = {k: v[0] for k, v in parse_qs(query).items()}
                try:
                    answer = console.client.call(self.command, path, body, params)
                except ApiError as exc:
                    error = {"code": exc.code, "message": exc.message, "fields": exc.fields}
                    return self._json(exc.status or 502, {"error": error})
                self._json(200, answer)

        return Handler

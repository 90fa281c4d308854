"""The API's documentation on the local stack: /openapi.json (generated from the routes)
and /docs, a Swagger UI served from the vendored swagger-ui-dist (no network: no CDN)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static" / "swagger-ui"
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
}
# The page itself: Swagger UI pointed at our document. "Authorize" takes the local stack's
# `Bearer <token>` (the header API Gateway's SigV4 stands for).
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>jobtracker API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});
  </script>
</body>
</html>
"""


@cache
def openapi_document() -> bytes:
    from jobtracker_local.openapi import render

    return render().encode()


def docs_asset(path: str) -> tuple[bytes, str] | None:
    """(body, content type) for a documentation path; None for any other path."""
    if path == "/openapi.json":
        return openapi_document(), "application/json"
    if path in ("/docs", "/docs/"):
        return PAGE.encode(), "text/html; charset=utf-8"
    name = path.removeprefix("/docs/")
    if path.startswith("/docs/") and name in ASSETS:
        return (STATIC / name).read_bytes(), ASSETS[name]
    return None

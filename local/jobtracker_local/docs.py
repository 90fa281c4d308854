"""The API's documentation on the local stack: /openapi.json (generated from the routes) and
/docs, Powertools' own Swagger UI page and the assets it ships (no network: no CDN)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui
from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

ASSETS_DIR = Path(swagger_ui.__file__).resolve().parent
ASSETS = {
    "swagger-ui-bundle.min.js": "application/javascript",
    "swagger-ui.min.css": "text/css",
}


@cache
def openapi_document() -> bytes:
    from jobtracker_local.openapi import render

    return render().encode()


@cache
def page() -> bytes:
    return generate_swagger_html(
        spec=openapi_document().decode(),
        swagger_js="/docs/swagger-ui-bundle.min.js",
        swagger_css="/docs/swagger-ui.min.css",
        swagger_base_url="/docs",
        oauth2_config=None,
    ).encode()


def docs_asset(path: str) -> tuple[bytes, str] | None:
    """(body, content type) for a documentation path; None for any other path."""
    if path == "/openapi.json":
        return openapi_document(), "application/json"
    if path in ("/docs", "/docs/"):
        return page(), "text/html; charset=utf-8"
    name = path.removeprefix("/docs/")
    if path.startswith("/docs/") and name in ASSETS:
        return (ASSETS_DIR / name).read_bytes(), ASSETS[name]
    return None

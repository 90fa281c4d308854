"""The committed OpenAPI document is what the code generates: a route or model changed without
`make openapi` fails here."""

from __future__ import annotations

import json
from pathlib import Path

from jobtracker_local.openapi import build_spec

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_openapi_document_matches_the_routes_and_models() -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())
    generated = build_spec()
    drifted = sorted(
        set(committed["paths"]) ^ set(generated["paths"])
        | {p for p in committed["paths"] if committed["paths"][p] != generated["paths"].get(p)}
    )
    assert not drifted, f"openapi.json is stale for {drifted}: run `make openapi`"
    assert committed == generated, "openapi.json is stale (components): run `make openapi`"


def test_every_route_of_the_template_is_documented_with_its_answers() -> None:
    spec = build_spec()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == {
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/jobs/{job_id}"),
        ("GET", "/jobs/{job_id}/logs"),
        ("POST", "/jobs/{job_id}/cancel"),
        ("GET", "/schedules"),
        ("GET", "/stats"),
        ("GET", "/definitions"),
    }, routes
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert "403" in codes, f"{method} {path} documents IAM's 403"
            assert any(c.startswith("2") for c in codes), f"{method} {path} has a success"


def test_the_document_requires_sigv4_on_every_route() -> None:
    spec = build_spec()
    assert spec["security"] == [{"sigv4": []}]
    assert spec["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == (
        "awsSigv4"
    )

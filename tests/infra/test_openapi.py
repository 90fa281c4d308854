"""The committed OpenAPI document is what the code generates (Powertools'
`get_openapi_json_schema()` over the routers): a route or model changed without `make openapi`
fails here. And the document tells the truth about what each route answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobtracker.edge.api import routes_of
from jobtracker.edge.routes import ROUTERS
from jobtracker_local.openapi import render

ROOT = Path(__file__).resolve().parents[2]


def spec() -> dict[str, Any]:
    return dict(json.loads(render()))


def test_the_committed_openapi_document_is_what_the_code_generates() -> None:
    committed = json.loads((ROOT / "openapi.json").read_text())
    generated = spec()
    drifted = sorted(
        set(committed["paths"]) ^ set(generated["paths"])
        | {p for p in committed["paths"] if committed["paths"][p] != generated["paths"].get(p)}
    )
    assert not drifted, f"openapi.json is stale for {drifted}: run `make openapi`"
    assert committed == generated, "openapi.json is stale (components): run `make openapi`"


def test_the_document_lists_every_route_the_routers_serve() -> None:
    documented = {(m.upper(), p) for p, ops in spec()["paths"].items() for m in ops}
    served = set().union(*(routes_of(r) for r in ROUTERS))
    assert documented == served, documented ^ served


def test_every_route_documents_its_success_iams_403_in_its_own_shape_and_500() -> None:
    for path, ops in spec()["paths"].items():
        for method, op in ops.items():
            answers = op["responses"]
            assert any(c.startswith("2") for c in answers), f"{method} {path} has a success"
            gateway = answers["403"]["content"]["application/json"]["schema"]
            assert gateway == {"$ref": "#/components/schemas/GatewayError"}, (method, path)
            ours = answers["500"]["content"]["application/json"]["schema"]
            assert ours == {"$ref": "#/components/schemas/ErrorView"}, (method, path)


def test_every_route_with_a_body_documents_the_body_errors() -> None:
    for path, ops in spec()["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                missing = {"400", "413", "415", "422"} - set(op["responses"])
                assert not missing, f"{method} {path} does not document {missing}"


def test_every_route_with_parameters_documents_the_422_they_can_answer() -> None:
    for path, ops in spec()["paths"].items():
        for method, op in ops.items():
            if any(p["in"] == "query" for p in op.get("parameters", [])):
                assert "422" in op["responses"], f"{method} {path}"


def test_the_document_requires_sigv4_on_every_route() -> None:
    document = spec()
    assert document["security"] == [{"sigv4": []}]
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4", scheme

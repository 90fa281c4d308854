"""The API's OpenAPI document, generated from the HTTP functions' own routes (edge/api.py's
Router: each route's parameters, body, answers and summary), the request models of
edge/api_models.py and the view classes of edge/views.py (their schemas through pydantic), with
the IAM (SigV4) security API Gateway applies to every route.

    python -m jobtracker_local.openapi > openapi.json     (make openapi)

`openapi.json` at the repository root is this output, committed; a test fails when it drifts.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic import TypeAdapter

from jobtracker.edge import api_models
from jobtracker.edge.api import ERRORS, JSON, Param, Route
from jobtracker.edge.api_models import ErrorView
from jobtracker_local import template as tpl
from jobtracker_local.handlers import load_module

REF = "#/components/schemas/{model}"

TITLE = "jobtracker"
VERSION = "1"
SIGV4 = {
    "type": "apiKey",
    "name": "Authorization",
    "in": "header",
    "description": "AWS Signature Version 4 for the service execute-api (IAM authorization).",
    "x-amazon-apigateway-authtype": "awsSigv4",
}


def http_functions() -> list[tuple[str, str]]:
    """(CodeUri, module) of every function that serves an HttpApi route."""
    t = tpl.load()
    found = []
    for _, res in sorted(tpl.resources_of_type(t, "AWS::Serverless::Function").items()):
        props = res["Properties"]
        events = (props.get("Events") or {}).values()
        if any(e["Type"] == "HttpApi" for e in events):
            found.append((props["CodeUri"], props["Handler"].rsplit(".", 1)[0]))
    return found


class Schemas:
    """The document's components: each class's JSON schema once, with the classes it uses."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, cls: type, mode: str = "serialization") -> dict[str, str]:
        if cls.__name__ not in self.components:
            schema = TypeAdapter(cls).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
            self.components.update(schema.pop("$defs", {}))
            self.components[cls.__name__] = schema
        return {"$ref": REF.format(model=cls.__name__)}


def _title(name: str) -> str:
    return name.replace("_", " ").title()


def _query(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer" if param.type is int else "string"}
    for key, value in (
        ("minimum", param.minimum),
        ("maximum", param.maximum),
        ("maxLength", param.max_length),
        ("default", param.default),
    ):
        if value is not None:
            schema[key] = value
    if param.choices is not None:
        schema["enum"] = list(param.choices)
    schema["title"] = _title(param.name)
    return {"name": param.name, "in": "query", "required": False, "schema": schema}


def _answer(schemas: Schemas, cls: type, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schemas.ref(cls)}}}


def operation(route: Route, schemas: Schemas) -> dict[str, Any]:
    slug = re.sub(r"[^a-z0-9]+", "_", route.path.lower()).strip("_")
    op: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.handler.__name__}_{slug}_{route.method.lower()}",
    }
    if route.description:
        op["description"] = route.description
    path_params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "title": _title(name)},
        }
        for name in re.findall(r"{(\w+)}", route.path)
    ]
    parameters = path_params + [_query(p) for p in route.params]
    if parameters:
        op["parameters"] = parameters
    if route.body is not None:
        model = getattr(api_models, route.body)
        op["requestBody"] = {
            "content": {JSON: {"schema": schemas.ref(model, mode="validation")}},
            "required": route.body_required,
        }
    responses = {
        str(status): _answer(schemas, cls, text) for status, (cls, text) in route.responses.items()
    }
    for status in (*route.errors, 403):
        responses[str(status)] = _answer(schemas, ErrorView, ERRORS[status])
    op["responses"] = responses
    return op


def build_spec() -> dict[str, Any]:
    schemas = Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for code_uri, module_name in http_functions():
        for route in load_module(code_uri, module_name).app.routes:
            paths.setdefault(route.path, {})[route.method.lower()] = operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Jobs on ECS/Fargate: submit, follow, cancel, read logs.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"sigv4": SIGV4},
        },
        "security": [{"sigv4": []}],
    }


def render() -> str:
    return json.dumps(build_spec(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

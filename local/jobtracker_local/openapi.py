"""The API's OpenAPI document, generated from the resolvers' own models and routes (each HTTP
function has its resolver; their documents are merged into one), with the IAM (SigV4)
security API Gateway applies to every route.

    python -m jobtracker_local.openapi > openapi.json     (make openapi)

`openapi.json` at the repository root is this output, committed; a test fails when it drifts.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from jobtracker_local import template as tpl
from jobtracker_local.handlers import load_module

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


def build_spec() -> dict[str, Any]:
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Jobs on ECS/Fargate: submit, follow, cancel, read logs.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {"sigv4": SIGV4}},
        "security": [{"sigv4": []}],
    }
    for code_uri, module_name in http_functions():
        app = load_module(code_uri, module_name).app
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        for path, operations in part.get("paths", {}).items():
            spec["paths"].setdefault(path, {}).update(operations)
        spec["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    spec["paths"] = dict(sorted(spec["paths"].items()))
    spec["components"]["schemas"] = dict(sorted(spec["components"]["schemas"].items()))
    return spec


def render() -> str:
    return json.dumps(build_spec(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

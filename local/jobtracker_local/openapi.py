"""The API's OpenAPI document, from Powertools' own generator: one resolver holding every route
the HTTP functions serve (edge/routes.py's routers), `get_openapi_json_schema()`, with the IAM
(SigV4) security API Gateway applies to every route.

    python -m jobtracker_local.openapi > openapi.json     (make openapi)

`openapi.json` at the repository root is this output, committed; a test fails when it drifts.
"""

from __future__ import annotations

import json
import sys

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn

from jobtracker.edge.api import make_resolver
from jobtracker.edge.routes import ROUTERS

TITLE = "jobtracker"
VERSION = "1"
DESCRIPTION = "Jobs on ECS/Fargate: submit, follow, cancel, read logs."
SIGV4 = APIKey.model_validate(
    {
        "name": "Authorization",
        "in": APIKeyIn.header,
        "description": "AWS Signature Version 4 for the service execute-api (IAM authorization).",
        "openapi_extensions": {"x-amazon-apigateway-authtype": "awsSigv4"},
    }
)


def render() -> str:
    app = make_resolver(*ROUTERS)
    for router in ROUTERS[1:]:
        app.include_router(router)
    text = app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes={"sigv4": SIGV4},
        security=[{"sigv4": []}],
    )
    return json.dumps(json.loads(text), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

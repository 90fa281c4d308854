"""Where the API is, and how to sign for it: a URL, a CloudFormation stack, or the local stack.

Order: an explicit URL (`--api`, or JOBTRACKER_API), else a stack's `ApiUrl` output
(`--stack`, or JOBTRACKER_STACK), else the local stack that is running: it writes
`stack.json` (endpoints and its own credentials, readable by its owner only) in its work dir,
found through JOBTRACKER_LOCAL_DIR, ./.local-stack, or the checkout this package runs from.
An explicit URL that is a running local stack's address signs with that stack's credentials
(it has no others); any other URL signs with the AWS credential chain.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jobtracker_client.client import ApiError, Bearer, JobTracker, SigV4

STACK_FILE = "stack.json"


def local_dirs() -> list[Path]:
    """Where a running local stack's stack.json may be, each folder once."""
    dirs = []
    if os.environ.get("JOBTRACKER_LOCAL_DIR"):
        dirs.append(Path(os.environ["JOBTRACKER_LOCAL_DIR"]))
    dirs.append(Path.cwd() / ".local-stack")
    dirs.append(Path(__file__).resolve().parents[2] / ".local-stack")  # a source checkout
    return list(dict.fromkeys(d.resolve() for d in dirs))


def local_stack(api: str | None = None) -> dict[str, Any] | None:
    """The running local stack (the one at `api`, when given) from its stack.json."""
    for folder in local_dirs():
        path = folder / STACK_FILE
        if path.is_file():
            info: dict[str, Any] = json.loads(path.read_text())
            if api is None or _same_address(info.get("api"), api):
                return info
    return None


def _same_address(a: object, b: str) -> bool:
    """One address written two ways (a trailing slash, localhost for 127.0.0.1) is one."""

    def key(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url.strip())
        host = "127.0.0.1" if parts.hostname == "localhost" else (parts.hostname or "")
        return parts.scheme, host, parts.port, parts.path.rstrip("/")

    return isinstance(a, str) and key(a) == key(b)


def for_local(info: dict[str, Any]) -> JobTracker:
    """The local stack signs like API Gateway when it has credentials; its token otherwise."""
    creds = info.get("credentials")
    if creds:
        auth: Any = SigV4.static(creds["access_key_id"], creds["secret_access_key"], info["region"])
    else:
        auth = Bearer(info["token"])
    return JobTracker(info["api"], auth)


def stack_api_url(stack: str, region: str | None, profile: str | None) -> tuple[str, str]:
    import botocore.session
    from botocore.exceptions import BotoCoreError, ClientError

    session = botocore.session.Session(profile=profile)
    region = region or session.get_config_variable("region") or "us-east-1"
    try:
        described = session.create_client("cloudformation", region_name=region).describe_stacks(
            StackName=stack
        )
    except (BotoCoreError, ClientError) as exc:
        raise ApiError(0, "stack_not_found", f"cannot read stack {stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    if "ApiUrl" not in outputs:
        raise ApiError(0, "stack_not_found", f"stack {stack!r} has no ApiUrl output")
    return outputs["ApiUrl"], region


def resolve(
    api: str | None = None,
    stack: str | None = None,
    region: str | None = None,
    profile: str | None = None,
) -> JobTracker:
    api = api or os.environ.get("JOBTRACKER_API")
    stack = stack or os.environ.get("JOBTRACKER_STACK")
    if api:
        local = local_stack(api)
        if local is not None:
            return for_local(local)
        return JobTracker(api, SigV4.from_chain(region, profile))
    if stack:
        url, found_region = stack_api_url(stack, region, profile)
        return JobTracker(url, SigV4.from_chain(found_region, profile))
    info = local_stack()
    if info is None:
        where = ", ".join(str(d / STACK_FILE) for d in local_dirs())
        raise ApiError(
            0,
            "no_api",
            "no API given (--api URL, --stack NAME, JOBTRACKER_API) and no local stack "
            f"running (looked for {where}; start one with `make run`)",
        )
    return for_local(info)

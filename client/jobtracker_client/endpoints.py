"""Where the API is, and how to sign for it: a URL, a CloudFormation stack, or the local stack.

Order: an explicit URL (`--api`, or JOBTRACKER_API), else a stack's `ApiUrl` output
(`--stack`, or JOBTRACKER_STACK), else the local stack that is running: it writes
`stack.json` (endpoints and its own credentials, readable by its owner only) in its work dir,
found through JOBTRACKER_LOCAL_DIR, ./.local-stack, or the checkout this package runs from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jobtracker_client.client import ApiError, Bearer, JobTracker, SigV4

STACK_FILE = "stack.json"


def local_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("JOBTRACKER_LOCAL_DIR"):
        dirs.append(Path(os.environ["JOBTRACKER_LOCAL_DIR"]))
    dirs.append(Path.cwd() / ".local-stack")
    dirs.append(Path(__file__).resolve().parents[2] / ".local-stack")  # a source checkout
    return dirs


def local_stack() -> dict[str, Any] | None:
    for folder in local_dirs():
        path = folder / STACK_FILE
        if path.is_file():
            info: dict[str, Any] = json.loads(path.read_text())
            return info
    return None


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

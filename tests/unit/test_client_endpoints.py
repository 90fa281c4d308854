"""Unit: where the CLI finds the API and how it signs (client/jobtracker_client/endpoints.py),
and when the local stack runs its demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jobtracker_client.client import ApiError, Bearer
from jobtracker_client.endpoints import local_dirs, resolve

from jobtracker_local.main import demo_wanted

STACK = {"api": "http://127.0.0.1:8080", "token": "t0k3n", "region": "us-east-1"}


@pytest.fixture
def running_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "stack.json").write_text(json.dumps(STACK))
    monkeypatch.setenv("JOBTRACKER_LOCAL_DIR", str(tmp_path))
    for name in ("JOBTRACKER_API", "JOBTRACKER_STACK", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return tmp_path


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://localhost:8080"]
)
def test_the_local_stacks_address_signs_with_that_stacks_credentials(
    running_stack: Path, address: str
) -> None:
    # GIVEN a running local stack at 127.0.0.1:8080 and no AWS credentials
    # WHEN the CLI is told that address, however it is written
    client = resolve(api=address)
    # THEN it signs as that stack asks (here its token), not with the AWS chain
    assert isinstance(client.auth, Bearer) and client.auth.token == "t0k3n", client.auth


def test_another_address_still_needs_aws_credentials(running_stack: Path) -> None:
    # GIVEN a running local stack WHEN the CLI is told some other address
    with pytest.raises(ApiError) as raised:
        resolve(api="https://abc.execute-api.us-east-1.amazonaws.com")
    # THEN it asks for AWS credentials, as for any deployed API
    assert raised.value.code == "no_credentials", raised.value


def test_the_places_a_local_stack_is_looked_for_are_each_listed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the CLI run from the checkout itself (./.local-stack is the checkout's)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    monkeypatch.delenv("JOBTRACKER_LOCAL_DIR", raising=False)
    # WHEN the places are listed THEN none is there twice
    dirs = local_dirs()
    assert len(dirs) == len(set(dirs)) == 1, dirs


@pytest.mark.parametrize(
    ("mode", "kept", "wanted"),
    [("fresh", 0, True), ("fresh", 12, False), ("always", 12, True), (None, 0, False)],
)
def test_the_demo_runs_on_a_fresh_state_or_when_asked(
    mode: str | None, kept: int, wanted: bool
) -> None:
    # GIVEN make run's `--demo fresh` (or --demo, or none) and what the state kept
    # THEN the demo jobs are submitted only on an empty state, or always when asked
    assert demo_wanted(mode, kept) is wanted, (mode, kept)

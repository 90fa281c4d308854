"""Schemathesis against the local stack, from openapi.json: every operation, generated requests
(valid and invalid), every answer held to the published contract.

Bounded and repeatable: MAX_EXAMPLES per operation and phase, derandomized (the same requests
on every run), no deadline per example (the first call of each function pays its cold start).
Few generated POSTs are accepted (a definition is a pattern, so almost every one names an
unknown definition and gets 422): the machine is not flooded with tasks.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup

from tests.contract.conftest import ContractStack
from tests.contract.findings import KNOWN, Finding

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 25

pytestmark = [pytest.mark.contract, pytest.mark.xdist_group("contract")]

# The checks issue 20 names; nothing else (no auth probing: the stack's SigV4 is tested in e2e).
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]

schema = schemathesis.openapi.from_path(
    ROOT / "openapi.json",
    config=SchemathesisConfig.from_dict(
        {
            # The session signs every request: no generated Authorization header.
            "generation": {"deterministic": True, "with-security-parameters": False},
        }
    ),
)

# Findings seen in this session, so the last test can name the KNOWN entries nothing hit.
SEEN: set[Finding] = set()
RAN: set[str] = set()


def validate(case: Any, stack: ContractStack, signed: bool = True) -> requests.Response:
    """Call and check; a failure listed in findings.KNOWN is recorded and let through, any
    other fails the test with Schemathesis's report (and its curl line to reproduce it)."""
    session = stack.session if signed else requests.Session()
    response = case.call(base_url=stack.api, session=session)
    try:
        case.validate_response(
            response, checks=CHECKS, transport_kwargs={"base_url": stack.api, "session": session}
        )
    except FailureGroup as group:
        label = f"{case.method.upper()} {case.path}"
        unknown = []
        for failure in group.exceptions:
            key = Finding(label, failure.code, response.status_code)
            if key in KNOWN:
                SEEN.add(key)
            else:
                unknown.append(failure)
        if unknown:
            raise
    return response  # type: ignore[no-any-return]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_answer_keeps_the_contract(case: Any, contract_stack: ContractStack) -> None:
    # GIVEN a generated request for one operation (valid or not, as the phase chose)
    RAN.add(f"{case.operation.method.upper()} {case.operation.path}")
    # WHEN it is sent, signed, to the local stack; THEN its answer keeps the contract
    validate(case, contract_stack)


OPERATIONS = [
    (method.upper(), path)
    for path, item in schema.raw_schema["paths"].items()
    for method in item
    if method in ("get", "post")
]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_an_unsigned_request_gets_the_documented_403(
    method: str, path: str, contract_stack: ContractStack
) -> None:
    # GIVEN a request with no signature (what IAM authorization refuses before any function)
    unknown = {name: f"unknown-{name}" for name in re.findall(r"{(\w+)}", path)}
    case = schema[path][method].Case(path_parameters=unknown)
    RAN.add(f"{method} {path}")
    # WHEN it is sent without the session's signer; THEN the 403 is the one documented
    validate(case, contract_stack, signed=False)


def test_real_jobs_answer_as_documented(contract_stack: ContractStack) -> None:
    """Generated ids name no job: this walks one real job through every route that shows it."""
    # GIVEN a job submitted with an Idempotency-Key (201), and the same submission again (200)
    body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 0}}
    key = {"Idempotency-Key": "contract-real-job"}
    created = validate(schema["/jobs"]["POST"].Case(body=body, headers=key), contract_stack)
    assert created.status_code in (201, 202), created.text
    job_id = created.json()["id"]
    replay = validate(schema["/jobs"]["POST"].Case(body=body, headers=key), contract_stack)
    assert replay.status_code == 200 and replay.json()["id"] == job_id, replay.text
    # WHEN it has run to the end
    get_job = schema["/jobs/{job_id}"]["GET"]
    deadline = time.monotonic() + 60
    while True:
        shown = validate(get_job.Case(path_parameters={"job_id": job_id}), contract_stack)
        if shown.json()["status"] in ("SUCCEEDED", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    # THEN the job with its attempt, its logs, the list and a refused cancel keep the contract
    assert shown.json()["status"] == "SUCCEEDED", shown.text
    logs = schema["/jobs/{job_id}/logs"]["GET"].Case(path_parameters={"job_id": job_id})
    assert validate(logs, contract_stack).status_code == 200
    listed = schema["/jobs"]["GET"].Case(query={"definition": "demo", "limit": 5})
    assert job_id in validate(listed, contract_stack).text
    cancel = schema["/jobs/{job_id}/cancel"]["POST"].Case(
        path_parameters={"job_id": job_id}, body={"reason": "contract"}
    )
    assert validate(cancel, contract_stack).status_code == 409, "a finished job is not cancelled"


def test_pausing_resuming_and_running_a_schedule_answer_as_documented(
    contract_stack: ContractStack,
) -> None:
    """Generated names name no schedule: this walks the demo schedule through its routes."""
    name = {"name": "demo-every-10-minutes"}
    # GIVEN the demo schedule; WHEN it is paused, run now and resumed
    for action in ("pause", "run", "resume"):
        case = schema[f"/schedules/{{name}}/{action}"]["POST"].Case(path_parameters=name)
        answered = validate(case, contract_stack)
        # THEN each answer keeps the contract (run: 201, or 409 while a run is active)
        expected = {201, 409} if action == "run" else {200}
        assert answered.status_code in expected, (action, answered.text)


def test_cancelling_a_running_job_answers_as_documented(contract_stack: ContractStack) -> None:
    # GIVEN a job that runs for a while
    body = {"definition": "demo", "parameters": {"kind": "succeed", "seconds": 30}}
    job_id = validate(schema["/jobs"]["POST"].Case(body=body), contract_stack).json()["id"]
    cancel = schema["/jobs/{job_id}/cancel"]["POST"].Case(
        path_parameters={"job_id": job_id}, body={"reason": "contract"}
    )
    # WHEN it is cancelled; THEN the answer (202, CANCELLING or CANCELLED) keeps the contract
    assert validate(cancel, contract_stack).status_code == 202


def test_every_known_finding_is_still_found() -> None:
    # GIVEN the run above (this test runs after it, in the same process: one xdist group)
    ran = {
        finding
        for finding in KNOWN
        if finding.request.split(" ", 1)[1] in {r.split(" ", 1)[1] for r in RAN}
    }
    # WHEN a KNOWN entry of an operation that ran was never hit; THEN it is stale: remove it
    stale = sorted(ran - SEEN)
    assert not stale, f"fixed? remove from tests/contract/findings.py: {stale}"

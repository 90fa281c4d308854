"""Schemathesis against the local stack, from openapi.json: every operation, generated requests
(valid and invalid), every answer held to the published contract.

Bounded and repeatable: MAX_EXAMPLES per operation and phase, derandomized (the same requests
on every run), no deadline per example (the first call of each function pays its cold start).
Few generated POSTs are accepted (a definition is a pattern, so almost every one names an
unknown definition and gets 422): the machine is not flooded with tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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


def validate(case: Any, stack: ContractStack) -> None:
    """Call and check; a failure listed in findings.KNOWN is recorded and let through, any
    other fails the test with Schemathesis's report (and its curl line to reproduce it)."""
    response = case.call(base_url=stack.api, session=stack.session)
    try:
        case.validate_response(
            response,
            checks=CHECKS,
            transport_kwargs={"base_url": stack.api, "session": stack.session},
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

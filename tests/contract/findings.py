"""What the contract tier finds today, each with its cause (the integrator's list, with examples:
/work/notes/contract-findings.md at the time of writing).

An entry lets exactly one (request line, Schemathesis failure code, status) through; any other
failure still fails. Remove an entry once the edge is fixed: the tier's last test fails on an
entry that no request hit, so the list cannot outlive its findings."""

from __future__ import annotations

from typing import NamedTuple


class Finding(NamedTuple):
    request: str  # "METHOD /path template", the method as sent (Schemathesis also tries others)
    code: str  # Schemathesis's failure code: ST101 server error, ST103 undocumented status, ...
    status: int


KNOWN: dict[Finding, str] = {}

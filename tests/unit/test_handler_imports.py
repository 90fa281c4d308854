"""What each handler loads on its first call (bench/coldstart.py measures the time; this keeps the
heavy libraries off the paths that do not need them, so a stray import fails here first)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTTP_FUNCTIONS = {"api", "create_job"}
EVENT_FUNCTIONS = sorted(
    p.parent.name
    for p in (ROOT / "functions").glob("*/app.py")
    if p.parent.name not in HTTP_FUNCTIONS
)
# pydantic (~80 ms to import) is the HTTP edge's; Powertools' batch utility brings asyncio and
# every event data class (~60 ms).
HEAVY = ("pydantic", "asyncio", "aws_lambda_powertools.utilities.batch")

LOAD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import jobtracker.adapters.store, jobtracker.adapters.aws
print(json.dumps(sorted(sys.modules)))
"""


def _modules_loaded_by(function: str) -> set[str]:
    code = LOAD.format(path=str(ROOT / "functions" / function / "app.py"))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_every_function_is_either_an_http_or_an_event_function() -> None:
    # GIVEN the functions on disk THEN the HTTP ones this test exempts still exist
    assert {p.parent.name for p in (ROOT / "functions").glob("*/app.py")} >= HTTP_FUNCTIONS
    assert EVENT_FUNCTIONS, "no event functions found"


@pytest.mark.parametrize("function", EVENT_FUNCTIONS)
def test_an_event_function_loads_no_heavy_library(function: str) -> None:
    # GIVEN a function that handles events, queues or schedules (not HTTP)
    # WHEN its handler, the data access module and a client's module are loaded
    loaded = _modules_loaded_by(function)
    # THEN none of the HTTP edge's libraries came with them
    assert not [m for m in HEAVY if m in loaded], (
        f"{function} loads {[m for m in HEAVY if m in loaded]}"
    )

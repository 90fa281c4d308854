"""What each handler loads on its first call (bench/coldstart.py measures the time; this keeps the
heavy libraries off the paths that do not need them, so a stray import fails here first)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.coldstart import FIRST_REQUEST, first_call

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
HTTP_FUNCTIONS = {"api", "create_job"}
# pydantic (~80 ms to import with the API's models), Powertools' HTTP resolver (~45 ms: it brings
# every resolver, AppSync's asyncio among them) and its batch utility (asyncio and every event
# data class, ~60 ms). Only the functions that need one may load it.
HEAVY = (
    "pydantic",
    "asyncio",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.event_handler",
)

RESOLVER = {"pydantic", "asyncio", "aws_lambda_powertools.event_handler"}
ALLOWED: dict[str, set[str]] = {name: RESOLVER for name in HTTP_FUNCTIONS}

LOAD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
{first_call}
print(json.dumps(sorted(sys.modules)))
"""


def _modules_loaded_by(function: str) -> set[str]:
    path = str(ROOT / "functions" / function / "app.py")
    code = LOAD.format(path=path, first_call=first_call(function))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_http_functions_this_test_sends_a_request_still_exist() -> None:
    # GIVEN the functions on disk THEN each HTTP one has its first request here
    assert set(FUNCTIONS) >= HTTP_FUNCTIONS == set(FIRST_REQUEST)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_loads_no_heavy_library_on_its_first_call(function: str) -> None:
    # GIVEN a function (HTTP, events, queues or schedules)
    # WHEN its handler, the data access module and a client's module are loaded (and an HTTP
    # function answers a first request)
    loaded = _modules_loaded_by(function)
    # THEN none of the heavy libraries it has no use for came with them
    extra = [m for m in HEAVY if m in loaded and m not in ALLOWED.get(function, set())]
    assert not extra, f"{function} loads {extra}"


COLLECTOR = """
import gc, importlib.util, json
before = gc.isenabled()
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps([before, gc.isenabled(), gc.get_freeze_count()]))
"""


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_turns_the_collector_back_on_once_loaded(function: str) -> None:
    # GIVEN a fresh interpreter, its collector on
    path = str(ROOT / "functions" / function / "app.py")
    # WHEN the function's module is loaded
    out = subprocess.run(
        [sys.executable, "-c", COLLECTOR.format(path=path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    before, after, frozen = json.loads(out.stdout.strip().splitlines()[-1])
    # THEN the collector is on again, and what the load built is frozen (never walked again)
    assert before and after, f"{function} leaves the garbage collector off"
    assert frozen > 10_000, f"{function} froze {frozen} objects: boot.loaded() did not run last"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_holds_the_collector_off_from_its_first_import_to_its_last_line(
    function: str,
) -> None:
    # GIVEN a function's source
    tree = ast.parse((ROOT / "functions" / function / "app.py").read_text())
    body = [n for n in tree.body if not isinstance(n, ast.Expr) or n is tree.body[-1]]
    imports = [n for n in body if isinstance(n, ast.Import | ast.ImportFrom)]
    # THEN its first import after __future__ is jobtracker.boot, and boot.loaded() is its end
    first = next(
        n for n in imports if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
    )
    assert isinstance(first, ast.Import) and first.names[0].name == "jobtracker.boot", function
    assert ast.unparse(body[-1]) == "boot.loaded()", f"{function} does not end with boot.loaded()"

"""Infra: the package's folders are its layers, and imports only point inwards:
edge -> usecases -> core, adapters implement the ports the use cases declare."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers/common/jobtracker"

# What each layer may import from the package, besides itself.
ALLOWED = {
    "core": {"config"},
    "usecases": {
        "core",
        "config",
        "wiring",
        "observability",
        "adapters.launcher",
        "adapters.queue",
        "adapters.records",
    },
    "adapters": {"core", "config", "observability", "usecases.ports"},
    "edge": {"core", "usecases", "config", "wiring", "observability", "adapters.records"},
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("jobtracker")
        ):
            found.add(node.module)
            if node.module == "jobtracker":
                found |= {f"jobtracker.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jobtracker.")}
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_inwards(layer: str) -> None:
    for path in sorted((PACKAGE / layer).glob("*.py")):
        for module in imports_of(path):
            target = module.removeprefix("jobtracker.")
            allowed = {layer, *ALLOWED[layer]}
            assert any(target == a or target.startswith(a + ".") for a in allowed), (
                f"{path.relative_to(PACKAGE)} imports {module}"
            )


HAND_BUILT = ("UpdateExpression", "ConditionExpression", "ExpressionAttribute", "KeyCondition")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_hand_built_dynamodb_expressions(path: Path) -> None:
    # GIVEN a module of the shared package THEN it leaves DynamoDB's expressions to pynamodb's
    # models (adapters/models.py): no expression is written as a string anywhere
    source = path.read_text()
    found = [word for word in HAND_BUILT if word in source]
    assert not found, f"{path.relative_to(PACKAGE)} builds {found} by hand"

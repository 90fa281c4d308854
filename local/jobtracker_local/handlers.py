"""Load a function's handler the way Lambda does: CodeUri on the path, module.function."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_LOADING = threading.RLock()  # re-entrant: a handler module may load another while loading


def load_handler(
    code_uri: str, handler: str, instance: int = 0
) -> Callable[[dict[str, Any], Any], Any]:
    """The handler of one instance of the function: each instance loads the function's module
    on its own, as each Lambda instance does, so what the module keeps between invocations (a
    Powertools resolver's current request, say) is never shared by two running at once."""
    module_name, func_name = handler.rsplit(".", 1)
    func = getattr(load_module(code_uri, module_name, instance), func_name)
    if not callable(func):
        raise TypeError(f"{handler} in {code_uri} is not callable")
    return func


def load_module(code_uri: str, module_name: str, instance: int = 0) -> Any:
    folder = (ROOT / code_uri).resolve()
    path = folder / (module_name.replace(".", "/") + ".py")
    unique = f"_fn_{folder.name}_{module_name.replace('.', '_')}"
    if instance:
        unique += f"_{instance}"
    with _LOADING:  # a concurrent first request must not see the module half-initialised
        module = sys.modules.get(unique)
        if module is None:
            spec = importlib.util.spec_from_file_location(unique, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
    return module


class FakeContext:
    """The parts of a Lambda context that Powertools reads."""

    def __init__(self, function_name: str = "local") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        )
        self.memory_limit_in_mb = 256
        self.aws_request_id = "local-request"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000

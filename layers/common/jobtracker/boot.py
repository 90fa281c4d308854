"""Start-up: the garbage collector is held off while a function loads.

A function's load builds objects that live as long as its process: modules, classes, pydantic's
schemas, botocore's service model. The collector's passes over them while they are built find
nothing to free, and on an HTTP function they were 0.09x the floor of its first call
(`bench/coldstart.py --instructions api`: 1.700 with them, 1.612 without). So each function's
app.py imports this module first (its own isort section, pyproject.toml), which turns the
collector off, and calls `loaded()` last, which moves everything built so far into the permanent
generation (`gc.freeze`: later collections never walk it) and turns the collector back on.
"""

from __future__ import annotations

import gc

gc.disable()


def loaded() -> None:
    """The function is loaded: what it built is kept for good, and collections resume."""
    gc.freeze()
    gc.enable()

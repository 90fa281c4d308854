"""A job definition's running limit (max_running): the slots an attempt takes before RunTask and
gives back when its task stops, or when no task was launched after all."""

from __future__ import annotations

from jobtracker.core import lifecycle
from jobtracker.wiring import Deps


def take_slot(deps: Deps, definition_name: str, job_id: str, number: int) -> int | None:
    """Take the attempt's slot. The limit it was refused by, or None (no limit, or a slot
    taken: taking one the attempt holds already succeeds)."""
    definition = deps.settings.job_definitions.get(definition_name)
    limit = definition.max_running if definition is not None else None
    slot = lifecycle.running_slot(job_id, number)
    if limit is None or deps.limits.acquire(definition_name, slot, limit):
        return None
    return limit


def give_back_slot(deps: Deps, definition_name: str | None, job_id: str, number: int) -> None:
    """Give back the attempt's slot: its task stopped, or none was launched. Giving back twice
    changes nothing, so every STOPPED seen (duplicates included) may call it, and a crash between
    a state's write and this leaves it to the redelivery."""
    definition = deps.settings.job_definitions.get(definition_name) if definition_name else None
    if definition_name and definition is not None and definition.max_running is not None:
        deps.limits.release(definition_name, lifecycle.running_slot(job_id, number))

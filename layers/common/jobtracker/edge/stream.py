"""The jobs table's stream: a record of a child's end is settled on its array
(usecases/arrays.py), and the end of a job that others wait on hands its dependents a RELEASE
(usecases/dependencies.py). Records of other items and changes that end nothing do nothing.
(The same records are published by adapters/notify.py; the notifier function runs both.)"""

from __future__ import annotations

from typing import Any

from jobtracker.adapters.records import job_from_image
from jobtracker.usecases.arrays import settle
from jobtracker.usecases.dependencies import hand_off_release
from jobtracker.wiring import Deps, default_deps


def settle_record(record: dict[str, Any], deps: Deps | None = None) -> str:
    """Raises when settling fails: the stream hands the record again (the counters may then
    count the child twice, which the array's recount corrects)."""
    ddb = record.get("dynamodb") or {}
    new = job_from_image(ddb.get("NewImage"))
    if new is None or not new.status.terminal:
        return "skipped"
    old = job_from_image(ddb.get("OldImage"))
    if old is not None and old.status.terminal:
        return "skipped"  # a final status never changes: this is not its end
    done = "skipped"
    if new.has_dependents:
        hand_off_release(new.job_id, deps or default_deps())
        done = "released"
    if new.parent_id is not None:
        done = settle(new, old.status if old else None, deps)
    return done

"""The jobs table's stream, for arrays: a record of a child's end is settled on its array
(usecases/arrays.py). Records of other items and changes that end nothing do nothing. (The
same records are published by adapters/notify.py; the notifier function runs both.)"""

from __future__ import annotations

from typing import Any

from jobtracker.adapters.records import job_from_image
from jobtracker.usecases.arrays import settle
from jobtracker.wiring import Deps


def settle_record(record: dict[str, Any], deps: Deps | None = None) -> str:
    """Raises when settling fails: the stream hands the record again (the counters may then
    count the child twice, which the array's recount corrects)."""
    ddb = record.get("dynamodb") or {}
    new = job_from_image(ddb.get("NewImage"))
    if new is None or new.parent_id is None:
        return "skipped"
    old = job_from_image(ddb.get("OldImage"))
    return settle(new, old.status if old else None, deps)

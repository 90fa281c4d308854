"""An array's counters (core/arrays.py's Summary): one item per array in the jobs table
(models.ArrayCounters), apart from the parent's job item, so the children's counts never contend
with the parent's own lifecycle writes and the parent's item keeps its size.

- Launching children claims the next indexes: one UpdateItem conditioned on `launched` being
  what the claimer read (DynamoDB's conditions cannot do the window's arithmetic, so the
  claimer does it from that read: core.arrays.launchable). Two claimers never take one index.
- A child's final status is one unconditional ADD, answered with the counters after it
  (ALL_NEW), from which the caller decides the parent's status and whether to launch more. A
  redelivered child may be counted twice; the counters are made exact from the children
  (`reset`) before the parent's final status is written (core/arrays.py).
"""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException

from jobtracker.adapters.models import ArrayCounters, FinishedMap, bind, refused
from jobtracker.core.arrays import FINAL, ArraySpec, Summary
from jobtracker.core.domain import JobStatus
from jobtracker.usecases.ports import ArrayExists


def _name(status: JobStatus) -> str:
    """A final status's attribute in FinishedMap (its Python name)."""
    return status.value.lower()


_FINISHED = {s: getattr(ArrayCounters.finished, _name(s)) for s in FINAL}


def key(parent_id: str) -> str:
    return f"array#{parent_id}"


class DynamoArrayCounters:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def create(self, parent_id: str, spec: ArraySpec) -> None:
        bind(self.table_name)
        item = ArrayCounters(
            key(parent_id),
            kind=ArrayCounters.KIND,
            size=spec.size,
            max_running=spec.max_running,
            tolerated=spec.tolerated,
            launched=0,
            finished=FinishedMap(succeeded=0, failed=0, timed_out=0, cancelled=0),
        )
        try:
            item.save(condition=ArrayCounters.pk.does_not_exist())
        except PynamoDBException as exc:
            if refused(exc):
                raise ArrayExists(parent_id) from None
            raise

    def read(self, parent_id: str) -> tuple[ArraySpec, Summary] | None:
        bind(self.table_name)
        try:
            got = ArrayCounters.get(key(parent_id), consistent_read=True)
        except ArrayCounters.DoesNotExist:
            return None
        return _spec(got), _summary(got)

    def claim(self, parent_id: str, seen: int, more: int) -> bool:
        """Indexes seen..seen+more-1 are the caller's, unless another claim moved `launched`."""
        bind(self.table_name)
        try:
            ArrayCounters(key(parent_id)).update(
                actions=[ArrayCounters.launched.add(more)],
                condition=ArrayCounters.launched == seen,
            )
        except PynamoDBException as exc:
            if refused(exc):
                return False
            raise
        return True

    def close(self, parent_id: str, seen: int, size: int) -> bool:
        """No more children: the indexes from `seen` are taken and counted CANCELLED (never
        made), unless a claim moved `launched` first or the array is closed already."""
        bind(self.table_name)
        try:
            ArrayCounters(key(parent_id)).update(
                actions=[
                    ArrayCounters.launched.set(size),
                    _FINISHED[JobStatus.CANCELLED].add(size - seen),
                    ArrayCounters.closed.set(True),
                ],
                condition=(ArrayCounters.launched == seen) & ArrayCounters.closed.does_not_exist(),
            )
        except PynamoDBException as exc:
            if refused(exc):
                return False
            raise
        return True

    def finish(self, parent_id: str, status: JobStatus) -> tuple[ArraySpec, Summary]:
        """One child more ended `status` (a final status); the array and its counters after
        it (the update's ALL_NEW answer: no read)."""
        bind(self.table_name)
        item = ArrayCounters(key(parent_id))
        item.update(actions=[_FINISHED[status].add(1)], condition=ArrayCounters.pk.exists())
        return _spec(item), _summary(item)

    def reset(self, parent_id: str, summary: Summary) -> None:
        """The finished counts as counted from the children themselves (`launched` and
        `closed` are the claims' and the close's alone)."""
        bind(self.table_name)
        ArrayCounters(key(parent_id)).update(
            actions=[_FINISHED[s].set(summary.count(s)) for s in FINAL],
            condition=ArrayCounters.pk.exists(),
        )


def _spec(got: ArrayCounters) -> ArraySpec:
    return ArraySpec(
        size=int(got.size),
        max_running=int(got.max_running) if got.max_running is not None else None,
        tolerated_failures=int(got.tolerated),
    )


def _summary(got: ArrayCounters) -> Summary:
    finished = {s: int(getattr(got.finished, _name(s))) for s in FINAL}
    return Summary(
        launched=int(got.launched),
        finished={s: n for s, n in finished.items() if n},
        closed=bool(got.closed),
    )

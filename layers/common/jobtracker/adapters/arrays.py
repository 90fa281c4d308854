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
            max_running=spec.window if spec.window < spec.size else None,
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

    def claim(self, parent_id: str, seen: int, more: int, cursor: int | None = None) -> bool:
        """Indexes seen..seen+more-1 are the caller's, unless another claim moved `launched`
        first. In a retry round `more` children up to index `cursor` are (the cursor moves
        there)."""
        bind(self.table_name)
        actions = [ArrayCounters.launched.add(more)]
        if cursor is not None:
            actions.append(ArrayCounters.cursor.set(cursor))
        try:
            ArrayCounters(key(parent_id)).update(
                actions=actions,
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

    def reopen(self, parent_id: str, seen: Summary, redo: frozenset[JobStatus]) -> bool:
        """A retry round: the children in `redo` statuses are neither launched nor finished
        any more, the array is open again, its cursor at 0. Unless the counters moved since
        `seen` (another retry-failed)."""
        bind(self.table_name)
        again = sum(seen.count(s) for s in redo)
        names = ",".join(sorted(s.value for s in redo))
        round_now = ArrayCounters.retry_round
        try:
            ArrayCounters(key(parent_id)).update(
                actions=[
                    ArrayCounters.launched.add(-again),
                    *(_FINISHED[s].set(0) for s in redo),
                    ArrayCounters.closed.remove(),
                    ArrayCounters.cursor.set(0),
                    round_now.set(seen.round + 1),
                    ArrayCounters.redo.set(names),
                ],
                condition=(ArrayCounters.launched == seen.launched)
                & (round_now.does_not_exist() if not seen.round else round_now == seen.round),
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

    def add_dependent(self, parent_id: str, dependent_id: str) -> None:
        """`dependent_id`'s children wait on this array's, index by index."""
        bind(self.table_name)
        ArrayCounters(key(parent_id)).update(
            actions=[ArrayCounters.per_index_dependents.add({dependent_id})],
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
        round=int(got.retry_round or 0),
        redo=frozenset(JobStatus(s) for s in (got.redo or "").split(",") if s),
        cursor=int(got.cursor or 0),
        per_index_dependents=frozenset(got.per_index_dependents or ()),
    )

"""Data access for jobs, on the table's pynamodb models (adapters/models.py: items, names and
indexes). Every transition is one conditional UpdateItem: the lifecycle's Change as pynamodb
actions, its Guard as the condition.

A refused write reads the item once (consistent) so the caller can plan again from what is
stored: pynamodb 6.1 cannot ask UpdateItem for ReturnValuesOnConditionCheckFailure, which would
have returned it with the refusal. What that costs, and how often it happens, is in the README's
data section.

Lists fan out over the index's shards and merge newest first; next_token keeps one cursor per
shard.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pynamodb.constants import BATCH_GET_PAGE_LIMIT
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.update import Action
from pynamodb.indexes import GlobalSecondaryIndex

from jobtracker.adapters.models import (
    ACTIVE,
    EDGE_SHARDS,
    WAITING,
    AttemptRecord,
    DependencyEdge,
    IdempotencyKey,
    JobRecord,
    bind,
    refused,
)
from jobtracker.adapters.records import (
    attempt_from,
    attempt_map,
    history_attr,
    history_value,
    item_size,
    job_from_record,
    job_record,
    list_keys,
    shard_of,
    status_group,
    status_key,
    stored,
)
from jobtracker.config import get_settings
from jobtracker.core.domain import Attempt, Job, JobStatus, child_id, parse_iso
from jobtracker.observability import count
from jobtracker.usecases.ports import (
    BadToken,
    IdempotencyConflict,
    IdempotencyRecord,
    ItemTooLarge,
    JobExists,
    Written,
)

if TYPE_CHECKING:  # the read path (GET) loads no write rules: lifecycle's 6 dataclasses cost
    # about 0.03x the cold-start floor to create (bench/coldstart.py)
    from jobtracker.core.lifecycle import Change, Guard

MAX_ITEM_BYTES = 400 * 1024
ARCHIVE_MARGIN_DAYS = 7
_current = JobRecord.current


# ---- the Change as one UpdateItem -------------------------------------------------------------


def condition_of(guard: Guard) -> Condition:
    """The Guard as the write's condition: what the change assumed about the stored job."""
    from jobtracker.core.lifecycle import ANY

    cond = JobRecord.pk.exists() & JobRecord.status.is_in(*sorted(guard.statuses))
    if guard.attempt is not None:
        cond &= JobRecord.attempt == guard.attempt
    if guard.newer_than is not None:
        cond &= _current.version.does_not_exist() | (_current.version < guard.newer_than)
    if guard.unfinished:
        cond &= _current.outcome.does_not_exist() & _current.awaiting_decision.does_not_exist()
    if guard.stop_request is None:
        cond &= JobRecord.stop_request.does_not_exist()
    elif guard.stop_request is not ANY:
        cond &= JobRecord.stop_request == guard.stop_request
    if guard.awaiting_decision is not None:
        ad = _current.awaiting_decision
        cond &= ad.exists() if guard.awaiting_decision else ad.does_not_exist()
    # A failure count is absent while it is 0 (the item stays small).
    counts = (
        (JobRecord.launch_failures, guard.launch_failures),
        (JobRecord.launch_waits, guard.launch_waits),
        (JobRecord.reconcile_failures, guard.reconcile_failures),
    )
    for attr, n in counts:
        if n is not None:
            cond &= attr.does_not_exist() if n == 0 else attr == n
    if guard.no_task:
        cond &= _current.task_arn.does_not_exist()
    if guard.history_count is not None:
        cond &= size(_current.history) == guard.history_count
    if guard.history_below is not None:
        cond &= size(_current.history) < guard.history_below
    if guard.history_absent is not None:
        cond &= _current.history[history_attr(guard.history_absent)].does_not_exist()
    if guard.waiting_has is not None:
        cond &= JobRecord.waiting_on.contains(guard.waiting_has)
    if guard.waiting_count is not None:
        cond &= size(JobRecord.waiting_on) == guard.waiting_count
    return cond


def _assign(attr: Any, value: Any) -> Action:
    value = stored(value)
    return attr.remove() if value is None else attr.set(value)


def actions_of(change: Change, retention_days: int | None) -> list[Action]:
    """What the Change writes: SET what it sets, REMOVE what it clears (defaults are absent)."""
    from jobtracker.core.lifecycle import REOPENING

    job_attrs = JobRecord.get_attributes()
    actions: list[Action] = []
    for name, value in change.sets.items():
        actions.append(_assign(job_attrs[name], value))
        if name == "status":
            status = JobStatus(value)
            actions.append(JobRecord.status_shard.set(status_key(status, change.job_id)))
            finished = parse_iso(change.sets.get("finished_at"))
            if status.terminal and retention_days and finished is not None:
                actions.append(JobRecord.expires.set(finished + timedelta(days=retention_days)))
            elif change.transition in REOPENING:
                actions.append(JobRecord.expires.remove())  # an array's retry: kept again
    if change.new_attempt is not None:
        actions.append(JobRecord.attempt.set(change.new_attempt.number))
        actions.append(_current.set(attempt_map(change.new_attempt)))
    for name, value in change.attempt_sets.items():
        actions.append(_assign(getattr(_current, name), value))
    for name, value in change.attempt_defaults.items():
        if value is not None:
            attr = getattr(_current, name)
            actions.append(attr.set(attr | stored(value)))
    if change.history is not None:
        key, entry = change.history
        actions.append(_current.history[history_attr(key)].set(history_value(entry)))
    return actions


# ---- list tokens ----------------------------------------------------------------------------


def _encode_token(index: str, prefix: str, cursors: dict[str, Any]) -> str:
    payload = json.dumps({"i": index, "p": prefix, "c": cursors}, separators=(",", ":"))
    packed = zlib.compress(payload.encode(), 9)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def _decode_token(token: str, index: str, prefix: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(zlib.decompress(base64.urlsafe_b64decode(padded.encode())))
    except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise BadToken("next_token is not a token this API issued") from exc
    if not isinstance(payload, dict) or payload.get("i") != index or payload.get("p") != prefix:
        raise BadToken("next_token belongs to a different query (filters changed)")
    cursors = payload.get("c")
    if not isinstance(cursors, dict) or not all(
        isinstance(k, str)
        and (v == 0 or (isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v)))
        for k, v in cursors.items()
    ):
        raise BadToken("next_token is not a token this API issued")
    return cursors


@dataclass
class _Shard:
    """One hash-key value of an index, read newest first from a cursor."""

    key: str
    cursor: list[str] | None  # [created_at, pk] of the last item taken; None: from the top
    buffer: list[tuple[str, str]] = field(default_factory=list)
    more: bool = True


# ---- the repository ---------------------------------------------------------------------------


class DynamoJobRepository:
    def __init__(self, table_name: str | None = None, retention_days: int | None = None) -> None:
        settings = get_settings()
        self.table_name = table_name or settings.table_name
        self.retention_days = retention_days or settings.retention_days

    def _bound(self) -> None:
        bind(self.table_name)

    # -- creation

    def create(self, job: Job) -> None:
        self._bound()
        record = job_record(job)
        finished = parse_iso(job.finished_at)
        if job.status.terminal and finished is not None and self.retention_days:
            # (a dependent whose dependency ended as its condition can never accept)
            record.expires = finished + timedelta(days=self.retention_days)
        item_bytes = item_size(record.serialize())
        if item_bytes > MAX_ITEM_BYTES:
            raise ItemTooLarge(f"job record of {item_bytes} bytes exceeds DynamoDB's 400 KB")
        try:
            record.save(condition=JobRecord.pk.does_not_exist())
        except PynamoDBException as exc:
            if refused(exc):
                raise JobExists(job.job_id) from exc
            raise

    def claim_idempotency(self, record: IdempotencyRecord) -> None:
        """Store the key before the job: a retry after a crash in between finds the key and
        creates the job it names."""
        self._bound()
        key = IdempotencyKey(
            record.key,
            kind=IdempotencyKey.KIND,
            job_id=record.job_id,
            body_hash=record.body_hash,
            expires=datetime.fromtimestamp(record.expires_at, tz=UTC),
        )
        try:
            key.save(condition=IdempotencyKey.pk.does_not_exist())
        except PynamoDBException as exc:
            if not refused(exc):
                raise
            try:
                old = IdempotencyKey.get(record.key, consistent_read=True)
            except IdempotencyKey.DoesNotExist:  # expired between the two calls
                raise IdempotencyConflict("", "") from exc
            raise IdempotencyConflict(old.job_id, old.body_hash) from exc

    # -- reads

    def get(self, job_id: str, full: bool = False) -> Job | None:
        record = self._read(job_id)
        if record is None:
            return None
        archived: dict[int, Attempt] = {}
        if full and record.attempt > 1:
            keys = [f"{job_id}#{n}" for n in range(1, record.attempt)]
            for old in AttemptRecord.batch_get(keys, consistent_read=True):
                n = int(old.number)
                archived[n] = attempt_from(job_id, n, old.attempt)
        return job_from_record(record, archived)

    def _read(self, job_id: str) -> JobRecord | None:
        self._bound()
        try:
            record = JobRecord.get(job_id, consistent_read=True)
        except JobRecord.DoesNotExist:
            return None
        return record if record.kind == JobRecord.KIND else None

    def many(self, job_ids: Iterable[str], consistent: bool = False) -> dict[str, Job]:
        self._bound()
        return self._jobs(list(dict.fromkeys(job_ids)), consistent)

    def _jobs(self, pks: Iterable[str], consistent: bool = False) -> dict[str, Job]:
        return {
            r.pk: job_from_record(r)
            for r in JobRecord.batch_get(pks, consistent_read=consistent)
            if r.kind == JobRecord.KIND
        }

    # -- the one write of every transition

    def apply(self, change: Change) -> Written:
        self._bound()
        if change.on_archived is not None:
            return self._note_archived(change)
        if change.archive is not None:
            self._put_archive(change.job_id, change.archive)
        record = JobRecord(change.job_id)
        try:
            record.update(
                actions=actions_of(change, self.retention_days),
                condition=condition_of(change.guard),
            )
        except PynamoDBException as exc:
            if not refused(exc):
                raise
            count("WritesRefused")
            stored_now = self._read(change.job_id)
            return Written(False, job_from_record(stored_now) if stored_now else None)
        return Written(True, job_from_record(record))

    def _put_archive(self, job_id: str, attempt: Attempt) -> None:
        """An attempt's own record, written before the job moves past it (a crash in between
        leaves the job where it was, and the retry writes it again).

        History only grows, so the record with more history is the newer one: a redelivered
        decision planned from an older snapshot never overwrites what is already kept."""
        record = AttemptRecord(
            f"{job_id}#{attempt.number}", kind=AttemptRecord.KIND, number=attempt.number
        )
        record.attempt = attempt_map(attempt)
        if self.retention_days:
            # The job's own expiry is set when it ends; its archives outlive that by a margin.
            record.expires = timedelta(days=self.retention_days + ARCHIVE_MARGIN_DAYS)
        kept = AttemptRecord.attempt.history
        try:
            record.save(
                condition=AttemptRecord.pk.does_not_exist() | (size(kept) < len(attempt.history))
            )
        except PynamoDBException as exc:
            if not refused(exc):
                raise
            # a record at least as complete is there already

    def _note_archived(self, change: Change) -> Written:
        assert change.history is not None and change.on_archived is not None
        key, entry = change.history
        entry_attr = AttemptRecord.attempt.history[history_attr(key)]
        record = AttemptRecord(f"{change.job_id}#{change.on_archived}")
        try:
            record.update(
                actions=[entry_attr.set(history_value(entry))],
                condition=AttemptRecord.pk.exists() & entry_attr.does_not_exist(),
            )
        except PynamoDBException as exc:
            if not refused(exc):
                raise
            return Written(False, None)
        return Written(True, None)

    # -- listing

    def list_jobs(
        self,
        status: str | None,
        definition: str | None,
        schedule: str | None,
        limit: int,
        token: str | None,
        children: bool = False,
    ) -> tuple[list[Job], str | None]:
        self._bound()
        wanted = JobStatus(status) if status else None
        index: GlobalSecondaryIndex[Any]
        if schedule:
            index, keys = JobRecord.by_schedule, [schedule]
        elif wanted is not None:
            prefix = status_group(wanted)
            index, keys = JobRecord.by_status, list_keys(prefix, children)
        elif definition and not children:
            index, keys = JobRecord.by_definition, list_keys(definition, False)
        else:  # children have no by_definition key: with them, a definition filters after
            index, keys = JobRecord.by_created, list_keys("", children)

        def keep(job: Job) -> bool:
            return (
                (wanted is None or job.status == wanted)
                and (definition is None or job.definition == definition)
                and (schedule is None or job.schedule_name == schedule)
            )

        name = index.Meta.index_name
        query = f"{status or ''}|{definition or ''}|{schedule or ''}" + ("|c" if children else "")
        cursors = _decode_token(token, name, query) if token else {}
        shards = [_Shard(k, cursors.get(k) or None) for k in keys if cursors.get(k) != 0]
        jobs: list[Job] = []
        for _ in range(20):  # a filter drops items after the fact: page until the page is full
            taken = self._merge(index, shards, limit - len(jobs))
            if not taken:
                break
            found = self._jobs(pk for _, pk in taken)
            jobs += [job for _, pk in taken if (job := found.get(pk)) is not None and keep(job)]
            if len(jobs) >= limit:
                break
        state: dict[str, Any] = {k: 0 for k in keys}  # 0: nothing left in that shard
        for shard in shards:
            if shard.more or shard.buffer:
                state[shard.key] = shard.cursor
        if all(v == 0 for v in state.values()):
            return jobs, None
        # Shards still at the top need no cursor: they are left out of the token.
        return jobs, _encode_token(name, query, {k: v for k, v in state.items() if v is not None})

    def _merge(
        self, index: GlobalSecondaryIndex[Any], shards: list[_Shard], limit: int
    ) -> list[tuple[str, str]]:
        """Take up to `limit` keys newest first across the shards."""
        taken: list[tuple[str, str]] = []
        while len(taken) < limit:
            for shard in shards:
                if not shard.buffer and shard.more:
                    self._fill(index, shard, limit)
            heads = [(s.buffer[0], i) for i, s in enumerate(shards) if s.buffer]
            if not heads:
                break
            (_, i) = max(heads)
            shard = shards[i]
            item = shard.buffer.pop(0)
            shard.cursor = [item[0], item[1]]
            taken.append(item)
        return taken

    def _fill(self, index: GlobalSecondaryIndex[Any], shard: _Shard, limit: int) -> None:
        start = None
        if shard.cursor:
            hash_attr = index._hash_key_attribute().attr_name
            start = {
                "pk": {"S": shard.cursor[1]},
                "c": {"S": shard.cursor[0]},
                hash_attr: {"S": shard.key},
            }
        page = max(limit, 1)
        found = index.query(
            shard.key,
            scan_index_forward=False,
            limit=page,
            page_size=page,
            last_evaluated_key=start,
        )
        shard.buffer = [(r.created_at, r.pk) for r in found]
        shard.more = bool(found.last_evaluated_key)

    # -- the reconciler's view: every job not yet finished

    def active_jobs(self) -> Iterator[Job]:
        return self._jobs_in(ACTIVE)

    def waiting_jobs(self) -> Iterator[Job]:
        """Every WAITING job (the reconciler's backstop for a release that was lost)."""
        return self._jobs_in(WAITING)

    def _jobs_in(self, group: str) -> Iterator[Job]:
        self._bound()
        for key in list_keys(group, children=True):
            pks: list[str] = []
            for found in JobRecord.by_status.query(key):
                pks.append(found.pk)
                if len(pks) == BATCH_GET_PAGE_LIMIT:  # one BatchGetItem's worth at a time
                    yield from self._jobs(pks).values()
                    pks = []
            if pks:
                yield from self._jobs(pks).values()

    # -- an array's children, by their ids (no index: child i is <parent>-<i>)

    def children(self, parent_id: str, indexes: range, consistent: bool = False) -> list[Job]:
        """The children at `indexes` that exist, in index order."""
        self._bound()
        ids = [child_id(parent_id, i) for i in indexes]
        found: dict[str, Job] = {}
        for start in range(0, len(ids), BATCH_GET_PAGE_LIMIT):
            page = ids[start : start + BATCH_GET_PAGE_LIMIT]
            for record in JobRecord.batch_get(page, consistent_read=consistent):
                if record.kind == JobRecord.KIND:
                    found[record.pk] = job_from_record(record)
        return [found[i] for i in ids if i in found]

    # -- dependencies: one edge item per (dependency, dependent), found by the dependency

    def add_edges(self, dependent_id: str, dependency_ids: Iterable[str], at: str) -> None:
        """The edges of a dependent, written before it is released by anything (a repeat
        writes the same items again)."""
        self._bound()
        shard = shard_of(dependent_id) % EDGE_SHARDS
        expires = (
            timedelta(days=self.retention_days + ARCHIVE_MARGIN_DAYS)
            if self.retention_days
            else None
        )
        with DependencyEdge.batch_write() as batch:
            for dependency_id in dependency_ids:
                batch.save(
                    DependencyEdge(
                        f"edge#{dependency_id}#{dependent_id}",
                        kind=DependencyEdge.KIND,
                        created_at=at,
                        dependency_shard=f"{dependency_id}#{shard}",
                        expires=expires,
                    )
                )

    def dependents(
        self, job_id: str, limit: int, token: str | None = None
    ) -> tuple[list[str], str | None]:
        """Up to `limit` ids of the jobs that wait (or waited) on `job_id`, shard after shard
        (each oldest first), and the token of the rest (None: no more)."""
        self._bound()
        shard, start = 0, None
        if token:
            cursors = _decode_token(token, "by_dependency", job_id)
            if len(cursors) != 1 or not next(iter(cursors)).isdigit():
                raise BadToken("next_token is not a token this API issued")
            ((at_shard, cursor),) = cursors.items()
            shard, start = int(at_shard), (cursor if cursor and cursor[0] else None)
        ids: list[str] = []
        index = DependencyEdge.by_dependency
        while shard < EDGE_SHARDS and len(ids) < limit:
            key = f"{job_id}#{shard}"
            last = (
                {"pk": {"S": start[0]}, "c": {"S": start[1]}, "gw": {"S": key}} if start else None
            )
            page = limit - len(ids)
            found = index.query(key, limit=page, page_size=page, last_evaluated_key=last)
            rows = [(r.pk, r.created_at) for r in found]
            ids += [pk.rsplit("#", 1)[1] for pk, _ in rows]
            if found.last_evaluated_key and rows:
                start = [rows[-1][0], rows[-1][1]]
            else:
                shard, start = shard + 1, None
        if shard >= EDGE_SHARDS:
            return ids, None
        return ids, _encode_token("by_dependency", job_id, {str(shard): start or ["", ""]})


@lru_cache(maxsize=1)
def default_repository() -> DynamoJobRepository:
    return DynamoJobRepository()


def create_table(table_name: str | None = None) -> None:
    """Create the table from the models (tests and the local stack; an infra test checks that
    template.yaml declares the same one)."""
    bind(table_name or get_settings().table_name)
    JobRecord.create_table(wait=False)

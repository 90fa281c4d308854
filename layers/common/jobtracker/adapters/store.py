"""Data access: the only module that knows the table layout. Plain boto3 (no ORM on the cold
path); every job write is one conditional UpdateItem generated from a lifecycle.Change.

Items (hash key `pk` only):

- job (hot):   pk=<job id>, k=J. The job's fields and its CURRENT attempt (map `a`, with that
               attempt's own state history). Attribute names are short and defaults are not
               stored, so a job submitted with defaults stays under 1 KB all its life: every
               write of it costs 1 WRU.
- attempt:     pk=<job id>#<n>, k=A. An earlier attempt, archived when the next one starts
               (written once; only late events add to its history).
- idempotency: pk=idem#<caller hash>#<key>, k=I, TTL.

Indexes (all KEYS_ONLY, range key `c` = created_at; hash keys write-sharded over SHARDS, so no
hash-key value takes more than ~1/SHARDS of an index's writes):

- by_created:    gc = <shard>                       every job, written once
- by_definition: gd = <definition>#<shard>          written once
- by_status:     gx = ACTIVE#<shard> while the job runs, <terminal status>#<shard> after; the
                 key changes once per job. GET /jobs?status= and the reconciler read it.
- by_schedule:   gs = <schedule name>               scheduled jobs only (≤ 1 tick a minute)

Lists fan out over the shards and merge newest first; next_token keeps one cursor per shard.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from jobtracker.adapters.aws import client
from jobtracker.adapters.records import (
    ACTIVE,
    ATTEMPT_ATTRS,
    INDEXES,
    JOB_ATTRS,
    SHARDS,
    absent,
    attempt_from,
    attempt_map,
    from_wire,
    history_attr,
    history_value,
    item_size,
    job_from_item,
    job_item,
    plain,
    shard_of,
    status_key,
    to_wire,
)
from jobtracker.config import get_settings
from jobtracker.core.domain import Attempt, Job, JobStatus, parse_iso
from jobtracker.core.lifecycle import ANY, Change, Guard
from jobtracker.usecases.ports import (
    BadToken,
    IdempotencyConflict,
    IdempotencyRecord,
    ItemTooLarge,
    JobExists,
    Written,
)

MAX_ITEM_BYTES = 400 * 1024
ARCHIVE_MARGIN_DAYS = 7

# ---- expressions ----------------------------------------------------------------------------


@dataclass
class _Expr:
    """Builds one UpdateItem's expressions with placeholder names and values."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    sets: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)

    def path(self, *parts: str) -> str:
        out = []
        for part in parts:
            alias = f"#{len(self.names)}"
            for known, name in self.names.items():
                if name == part:
                    alias = known
                    break
            self.names[alias] = part
            out.append(alias)
        return ".".join(out)

    def value(self, value: Any) -> str:
        alias = f":{len(self.values)}"
        self.values[alias] = to_wire(plain(value))
        return alias

    def assign(self, path: str, value: Any) -> None:
        if absent(value):
            self.removes.append(path)
        else:
            self.sets.append(f"{path} = {self.value(value)}")

    def request(self) -> dict[str, Any]:
        update = []
        if self.sets:
            update.append("SET " + ", ".join(self.sets))
        if self.removes:
            update.append("REMOVE " + ", ".join(self.removes))
        out: dict[str, Any] = {
            "UpdateExpression": " ".join(update),
            "ConditionExpression": " AND ".join(f"({c})" for c in self.conditions),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


def _guard(expr: _Expr, guard: Guard) -> None:
    a = "a"
    expr.conditions.append(f"attribute_exists({expr.path('pk')})")
    statuses = ", ".join(expr.value(s) for s in sorted(guard.statuses))
    expr.conditions.append(f"{expr.path('s')} IN ({statuses})")
    if guard.attempt is not None:
        expr.conditions.append(f"{expr.path('n')} = {expr.value(guard.attempt)}")
    if guard.newer_than is not None:
        v = expr.path(a, "v")
        expr.conditions.append(f"attribute_not_exists({v}) OR {v} < {expr.value(guard.newer_than)}")
    if guard.unfinished:
        expr.conditions.append(
            f"attribute_not_exists({expr.path(a, 'o')}) AND "
            f"attribute_not_exists({expr.path(a, 'ad')})"
        )
    if guard.stop_request is ANY:
        pass  # not checked
    elif guard.stop_request is None:
        expr.conditions.append(f"attribute_not_exists({expr.path('sr')})")
    else:
        expr.conditions.append(f"{expr.path('sr')} = {expr.value(guard.stop_request)}")
    if guard.awaiting_decision is not None:
        check = "attribute_exists" if guard.awaiting_decision else "attribute_not_exists"
        expr.conditions.append(f"{check}({expr.path(a, 'ad')})")
    # A failure count is absent while it is 0 (the item stays small).
    counts = (
        ("lf", guard.launch_failures),
        ("lw", guard.launch_waits),
        ("rf", guard.reconcile_failures),
    )
    for attr, count in counts:
        if count is not None:
            path = expr.path(attr)
            expr.conditions.append(
                f"attribute_not_exists({path})" if count == 0 else f"{path} = {expr.value(count)}"
            )
    if guard.no_task:
        expr.conditions.append(f"attribute_not_exists({expr.path(a, 't')})")
    if guard.history_count is not None:
        count = expr.value(guard.history_count)
        expr.conditions.append(f"size({expr.path(a, 'h')}) = {count}")
    if guard.history_below is not None:
        below = expr.value(guard.history_below)
        expr.conditions.append(f"size({expr.path(a, 'h')}) < {below}")
    if guard.history_absent is not None:
        key = history_attr(guard.history_absent)
        expr.conditions.append(f"attribute_not_exists({expr.path(a, 'h', key)})")


def update_request(change: Change, retention_days: int | None) -> dict[str, Any]:
    """The one UpdateItem of a job Change: SET what changes, the guard as its condition."""
    expr = _Expr()
    _guard(expr, change.guard)
    shard = shard_of(change.job_id)
    for name, value in change.sets.items():
        expr.assign(expr.path(JOB_ATTRS[name]), value)
        if name == "status":
            status = JobStatus(value)
            expr.assign(expr.path("gx"), status_key(status, shard))
            if status.terminal and retention_days and change.sets.get("finished_at"):
                finished = parse_iso(change.sets["finished_at"])
                assert finished is not None
                ttl = int((finished + timedelta(days=retention_days)).timestamp())
                expr.assign(expr.path("x"), ttl)
    if change.new_attempt is not None:
        expr.assign(expr.path("n"), change.new_attempt.number)
        expr.sets.append(f"{expr.path('a')} = {expr.value(attempt_map(change.new_attempt))}")
    for name, value in change.attempt_sets.items():
        expr.assign(expr.path("a", ATTEMPT_ATTRS[name]), value)
    for name, value in change.attempt_defaults.items():
        if value is not None:
            path = expr.path("a", ATTEMPT_ATTRS[name])
            expr.sets.append(f"{path} = if_not_exists({path}, {expr.value(value)})")
    if change.history is not None:
        key, entry = change.history
        path = expr.path("a", "h", history_attr(key))
        expr.sets.append(f"{path} = {expr.value(history_value(entry))}")
    return expr.request()


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

    @property
    def _ddb(self) -> Any:
        return client("dynamodb")

    # -- creation

    def create(self, job: Job) -> None:
        item = job_item(job)
        size = item_size(item)
        if size > MAX_ITEM_BYTES:
            raise ItemTooLarge(f"job record of {size} bytes exceeds DynamoDB's 400 KB")
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item={k: to_wire(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException as exc:
            raise JobExists(job.job_id) from exc

    def claim_idempotency(self, record: IdempotencyRecord) -> None:
        """Store the key before the job: a retry after a crash in between finds the key and
        creates the job it names."""
        item = {
            "pk": record.key,
            "k": "I",
            "job_id": record.job_id,
            "body_hash": record.body_hash,
            "x": record.expires_at,
        }
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item={k: to_wire(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._ddb.exceptions.ConditionalCheckFailedException as exc:
            old = from_wire(exc.response.get("Item") or {})
            if not old:
                old = from_wire(
                    self._ddb.get_item(
                        TableName=self.table_name,
                        Key={"pk": {"S": record.key}},
                        ConsistentRead=True,
                    ).get("Item")
                    or {}
                )
            raise IdempotencyConflict(old.get("job_id", ""), old.get("body_hash", "")) from exc

    # -- reads

    def get(self, job_id: str, full: bool = False) -> Job | None:
        raw = self._ddb.get_item(
            TableName=self.table_name, Key={"pk": {"S": job_id}}, ConsistentRead=True
        ).get("Item")
        if not raw:
            return None
        item = from_wire(raw)
        if item.get("k") != "J":
            return None
        archived: dict[int, Attempt] = {}
        attempt = int(item.get("n", 1))
        if full and attempt > 1:
            keys = [f"{job_id}#{n}" for n in range(1, attempt)]
            for old in self._batch_get(keys, consistent=True):
                n = int(old["n"])
                archived[n] = attempt_from(job_id, n, old.get("a") or {})
        return job_from_item(item, archived)

    def _batch_get(self, keys: list[str], consistent: bool = False) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"pk": {"S": k}} for k in keys[start : start + 100]],
                    "ConsistentRead": consistent,
                }
            }
            for _ in range(10):
                got = self._ddb.batch_get_item(RequestItems=pending)
                out += [from_wire(i) for i in got.get("Responses", {}).get(self.table_name, [])]
                pending = got.get("UnprocessedKeys") or {}
                if not pending:
                    break
        return out

    # -- the one write of every transition

    def apply(self, change: Change) -> Written:
        if change.on_archived is not None:
            return self._note_archived(change)
        if change.archive is not None:
            self._put_archive(change.job_id, change.archive)
        request = update_request(change, self.retention_days)
        try:
            got = self._ddb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": change.job_id}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **request,
            )
        except self._ddb.exceptions.ConditionalCheckFailedException as exc:
            old = exc.response.get("Item")
            stored = from_wire(old) if old else None
            return Written(
                False, job_from_item(stored) if stored and stored.get("k") == "J" else None
            )
        return Written(True, job_from_item(from_wire(got["Attributes"])))

    def _put_archive(self, job_id: str, attempt: Attempt) -> None:
        """An attempt's own record, written before the job moves past it (a crash in between
        leaves the job where it was, and the retry writes it again).

        History only grows, so the record with more history is the newer one: a redelivered
        decision planned from an older snapshot never overwrites what is already kept."""
        item: dict[str, Any] = {"pk": f"{job_id}#{attempt.number}", "k": "A", "n": attempt.number}
        item["a"] = attempt_map(attempt)
        if self.retention_days:
            # The job's own expiry is set when it ends; its archives outlive that by a margin.
            days = self.retention_days + ARCHIVE_MARGIN_DAYS
            item["x"] = int(time.time()) + days * 86400
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item={k: to_wire(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk) OR size(#a.#h) < :kept",
                ExpressionAttributeNames={"#a": "a", "#h": "h"},
                ExpressionAttributeValues={":kept": to_wire(len(attempt.history))},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return  # a record at least as complete is there already

    def _note_archived(self, change: Change) -> Written:
        assert change.history is not None and change.on_archived is not None
        key, entry = change.history
        attr = history_attr(key)
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"{change.job_id}#{change.on_archived}"}},
                UpdateExpression="SET #a.#h.#v = :e",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#a.#h.#v)",
                ExpressionAttributeNames={"#a": "a", "#h": "h", "#v": attr},
                ExpressionAttributeValues={":e": to_wire(history_value(entry))},
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
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
    ) -> tuple[list[Job], str | None]:
        wanted = JobStatus(status) if status else None
        if schedule:
            index, keys = "by_schedule", [schedule]
        elif wanted is not None:
            prefix = wanted.value if wanted.terminal else ACTIVE
            index, keys = "by_status", [f"{prefix}#{s}" for s in range(SHARDS)]
        elif definition:
            index, keys = "by_definition", [f"{definition}#{s}" for s in range(SHARDS)]
        else:
            index, keys = "by_created", [str(s) for s in range(SHARDS)]

        def keep(job: Job) -> bool:
            return (
                (wanted is None or job.status == wanted)
                and (definition is None or job.definition == definition)
                and (schedule is None or job.schedule_name == schedule)
            )

        query = f"{status or ''}|{definition or ''}|{schedule or ''}"
        cursors = _decode_token(token, index, query) if token else {}
        shards = [_Shard(k, cursors.get(k) or None) for k in keys if cursors.get(k) != 0]
        jobs: list[Job] = []
        for _ in range(20):  # a filter drops items after the fact: page until the page is full
            taken = self._merge(index, shards, limit - len(jobs))
            if not taken:
                break
            found = {item["pk"]: item for item in self._batch_get([pk for _, pk in taken])}
            for _, pk in taken:
                item = found.get(pk)
                if item is not None and item.get("k") == "J":
                    job = job_from_item(item)
                    if keep(job):
                        jobs.append(job)
            if len(jobs) >= limit:
                break
        state: dict[str, Any] = {k: 0 for k in keys}  # 0: nothing left in that shard
        for shard in shards:
            if shard.more or shard.buffer:
                state[shard.key] = shard.cursor
        if all(v == 0 for v in state.values()):
            return jobs, None
        # Shards still at the top need no cursor: they are left out of the token.
        return jobs, _encode_token(index, query, {k: v for k, v in state.items() if v is not None})

    def _merge(self, index: str, shards: list[_Shard], limit: int) -> list[tuple[str, str]]:
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

    def _fill(self, index: str, shard: _Shard, limit: int) -> None:
        hash_attr = INDEXES[index]
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": hash_attr},
            "ExpressionAttributeValues": {":h": {"S": shard.key}},
            "ScanIndexForward": False,
            "Limit": max(limit, 1),
        }
        if shard.cursor:
            kwargs["ExclusiveStartKey"] = {
                "pk": {"S": shard.cursor[1]},
                "c": {"S": shard.cursor[0]},
                hash_attr: {"S": shard.key},
            }
        got = self._ddb.query(**kwargs)
        shard.buffer = [(i["c"]["S"], i["pk"]["S"]) for i in got.get("Items", [])]
        shard.more = bool(got.get("LastEvaluatedKey"))

    # -- the reconciler's view: every job not yet finished

    def active_jobs(self) -> Iterator[Job]:
        for shard in range(SHARDS):
            key = f"{ACTIVE}#{shard}"
            start: dict[str, Any] | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "TableName": self.table_name,
                    "IndexName": "by_status",
                    "KeyConditionExpression": "gx = :h",
                    "ExpressionAttributeValues": {":h": {"S": key}},
                }
                if start:
                    kwargs["ExclusiveStartKey"] = start
                got = self._ddb.query(**kwargs)
                pks = [i["pk"]["S"] for i in got.get("Items", [])]
                for item in self._batch_get(pks):
                    if item.get("k") == "J":
                        yield job_from_item(item)
                start = got.get("LastEvaluatedKey")
                if not start:
                    break


@lru_cache(maxsize=1)
def default_repository() -> DynamoJobRepository:
    return DynamoJobRepository()


def table_definition(table_name: str) -> dict[str, Any]:
    """The table as template.yaml declares it (tests and the local stack create it from this;
    an infra test checks the two agree)."""
    attrs = ["pk", "c", *INDEXES.values()]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attrs],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": hash_attr, "KeyType": "HASH"},
                    {"AttributeName": "c", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
            for name, hash_attr in INDEXES.items()
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def create_table(table_name: str | None = None) -> None:
    """Create the table (tests and the local stack)."""
    name = table_name or get_settings().table_name
    ddb = client("dynamodb")
    try:
        ddb.create_table(**table_definition(name))
    except ddb.exceptions.ResourceInUseException:
        return

"""DynamoDB capacity meter for moto in-process (``moto.mock_aws``), plus an AWS API call counter.

Installed by patching ``botocore.client.BaseClient._make_api_call`` (every boto3/botocore/pynamodb
client goes through it); ``close()`` (or leaving the ``with`` block) restores it. Table layouts
are never assumed: key schemas, GSIs and LSIs (key attributes, projection type,
NonKeyAttributes) come from ``DescribeTable`` at run time, cached per table and dropped when a
CreateTable / UpdateTable / DeleteTable goes by.

For every write (PutItem, UpdateItem, DeleteItem, TransactWriteItems, BatchWriteItem) the meter
reads each affected item before and after the call with its own client to the same moto
(GetItem, ConsistentRead; its calls are neither metered nor counted) and charges what on-demand
DynamoDB would:

Item size ("Item sizes and formats", Amazon DynamoDB Developer Guide):
  sum over attributes of the attribute name's UTF-8 bytes plus the value's size:
  - String: UTF-8 byte length;  Binary: byte length;  Boolean, Null: 1 byte;
  - Number: ceil(significant digits / 2) + 1 bytes (leading/trailing zeros do not count);
  - List, Map: 3 bytes + 1 byte per element + the elements (a Map element counts its key's
    UTF-8 bytes as well);
  - String/Number/Binary set: the sum of its members' sizes.

Table writes ("Read/write capacity mode" and "Managing settings on DynamoDB provisioned
capacity tables", Developer Guide):
  - 1 WRU per started 1 KB of the larger of the item before and after the write (PutItem,
    UpdateItem: the whole item, even for a one-attribute update; DeleteItem: the deleted item);
    a write of an absent item costs at least 1;
  - a conditional write whose condition fails still costs the size of the existing item
    (minimum 1);
  - TransactWriteItems costs 2x per item (prepare + commit), a ConditionCheck included; a
    cancelled transaction is charged as failed conditional writes of every item, x2. Index
    writes of a transaction are charged 1x (``transaction_index_factor``), an assumption: the
    guide documents the doubling for the table write only;
  - BatchWriteItem: each item as its PutItem / DeleteItem; UnprocessedItems are not charged.

Global secondary index writes ("Managing settings on DynamoDB provisioned capacity tables",
section "GSI write capacity" / "Provisioned throughput considerations for global secondary
indexes", Developer Guide), per index, from the index entries before and after:
  - an entry exists only when every key attribute of the index is in the item (sparse index);
  - entry size = index key attributes + table key attributes + projected attributes (KEYS_ONLY:
    none; INCLUDE: NonKeyAttributes; ALL: the whole item) + 100 bytes of overhead;
  - no entry before and after: 0; an entry appears: one put (ceil(new / 1 KB)); disappears: one
    delete (ceil(old / 1 KB)); the index key changes: a delete plus a put; same key but a
    projected attribute changed: one put; nothing projected changed: 0.
  Local secondary indexes are charged by the same rules (index key = table hash key + the LSI
  range key).

Reads ("Read/write capacity mode", Developer Guide): 1 RRU per started 4 KB strongly
consistent, 0.5 eventually consistent (GSI queries always eventually consistent);
TransactGetItems 2 per 4 KB. GetItem/BatchGetItem: each item's full size (a projection does not
reduce it), at least one 4 KB unit per requested key, present or not. Query/Scan: the sizes of
all items read (before any FilterExpression, whatever the projection; index entries without the
100 bytes for an index), summed then rounded up per 4 KB, at least one unit. When a request has
a FilterExpression, a projection or Select=COUNT, the meter re-runs it on its own client without
them (same key condition, Limit, ExclusiveStartKey) to see what was read.

Every AWS call is also counted by ``service.Operation`` (all services, failed calls included),
with ``billable`` units where AWS bills per 64 KB chunk: SQS requests, SNS publishes,
EventBridge PutEvents entries. PartiQL and anything else the meter cannot price is listed in
``unmetered``.

    with mock_aws(), DdbMeter() as meter:
        ...                        # code under test
        snap = meter.snapshot()    # MeterSnapshot: plain dataclasses
        meter.reset()
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import botocore.client
from botocore.exceptions import ClientError

WRITE_UNIT = 1024
READ_UNIT = 4096
INDEX_OVERHEAD = 100
CHUNK = 64 * 1024

WRITE_OPS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
)
READ_OPS = frozenset({"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"})
SCHEMA_OPS = frozenset({"CreateTable", "UpdateTable", "DeleteTable"})
UNPRICED_OPS = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})
TYPE_TAGS = frozenset({"S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL"})

Item = dict[str, Any]  # DynamoDB JSON: {"name": {"S": "x"}, ...}


# ---- sizes -------------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """ceil(significant digits / 2) + 1."""
    digits = Decimal(str(text)).normalize().as_tuple().digits
    return math.ceil(max(len(digits), 1) / 2) + 1


def _binary_len(value: Any) -> int:
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return len(str(value).encode())


def value_size(value: dict[str, Any]) -> int:
    """Size of one typed value ({"S": ...}, {"N": ...}, ...) without its attribute name."""
    ((tag, v),) = value.items()
    if tag == "S":
        return len(v.encode())
    if tag == "N":
        return number_size(v)
    if tag == "B":
        return _binary_len(v)
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(s.encode()) for s in v)
    if tag == "NS":
        return sum(number_size(n) for n in v)
    if tag == "BS":
        return sum(_binary_len(b) for b in v)
    if tag == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if tag == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in v.items())
    raise ValueError(f"unknown DynamoDB type {tag!r}")


def item_size(item: Item | None) -> int:
    """Size of an item (0 for None) by DynamoDB's rules."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


def _canon(value: Any) -> Any:
    """A comparable form of a typed value (sets unordered, numbers by value)."""
    ((tag, v),) = value.items()
    if tag == "N":
        return ("N", Decimal(v).normalize())
    if tag == "NS":
        return ("NS", frozenset(Decimal(n).normalize() for n in v))
    if tag in ("SS", "BS"):
        return (tag, frozenset(bytes(x) if not isinstance(x, str) else x for x in v))
    if tag == "B":
        return ("B", bytes(v) if not isinstance(v, str) else v.encode())
    if tag == "L":
        return ("L", tuple(_canon(e) for e in v))
    if tag == "M":
        return ("M", frozenset((k, _canon(e)) for k, e in v.items()))
    return (tag, v)


def _same(a: Item, b: Item) -> bool:
    return a.keys() == b.keys() and all(_canon(a[k]) == _canon(b[k]) for k in a)


def key_text(value: dict[str, Any]) -> str:
    """A key attribute's value as text (for per-partition accounting)."""
    ((tag, v),) = value.items()
    if tag == "N":
        return str(Decimal(v).normalize())
    if tag == "B":
        return (bytes(v) if not isinstance(v, str) else v.encode()).hex()
    return str(v)


# ---- table layout (from DescribeTable) -----------------------------------------------------------


@dataclass(frozen=True)
class IndexLayout:
    name: str
    kind: str  # "GSI" | "LSI"
    hash_key: str
    range_key: str | None
    projection: str  # "KEYS_ONLY" | "INCLUDE" | "ALL"
    non_key_attributes: tuple[str, ...]

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return (self.hash_key,) + ((self.range_key,) if self.range_key else ())


@dataclass(frozen=True)
class TableLayout:
    name: str
    hash_key: str
    range_key: str | None
    indexes: tuple[IndexLayout, ...]

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return (self.hash_key,) + ((self.range_key,) if self.range_key else ())

    def key_of(self, item: Item) -> Item:
        return {k: item[k] for k in self.key_attributes if k in item}

    def index(self, name: str) -> IndexLayout | None:
        return next((i for i in self.indexes if i.name == name), None)


def _keys(schema: list[dict[str, str]]) -> tuple[str, str | None]:
    hash_key = next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
    return hash_key, range_key


def layout_from_description(table: dict[str, Any]) -> TableLayout:
    """A TableLayout from DescribeTable's "Table"."""
    hash_key, range_key = _keys(table["KeySchema"])
    indexes = []
    for kind, listing in (
        ("GSI", table.get("GlobalSecondaryIndexes") or []),
        ("LSI", table.get("LocalSecondaryIndexes") or []),
    ):
        for ix in listing:
            ih, ir = _keys(ix["KeySchema"])
            projection = ix.get("Projection") or {}
            indexes.append(
                IndexLayout(
                    name=ix["IndexName"],
                    kind=kind,
                    hash_key=ih,
                    range_key=ir,
                    projection=projection.get("ProjectionType", "ALL"),
                    non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
                )
            )
    return TableLayout(table["TableName"], hash_key, range_key, tuple(indexes))


def index_entry(table: TableLayout, index: IndexLayout, item: Item | None) -> Item | None:
    """The index entry an item has in `index` (None: sparse, the item is not in the index)."""
    if not item or any(k not in item for k in index.key_attributes):
        return None
    if index.projection == "ALL":
        return dict(item)
    names = set(index.key_attributes) | set(table.key_attributes)
    if index.projection == "INCLUDE":
        names |= set(index.non_key_attributes)
    return {k: v for k, v in item.items() if k in names}


@dataclass(frozen=True)
class IndexWrite:
    """What one item write costs in one index: (hash-key text, WRU) per put and per delete."""

    puts: tuple[tuple[str, int], ...] = ()
    deletes: tuple[tuple[str, int], ...] = ()

    @property
    def wru(self) -> int:
        return sum(u for _, u in self.puts) + sum(u for _, u in self.deletes)


def index_write(
    table: TableLayout, index: IndexLayout, before: Item | None, after: Item | None
) -> IndexWrite:
    """The index writes of an item going from `before` to `after` (GSI write capacity rules)."""
    old = index_entry(table, index, before)
    new = index_entry(table, index, after)
    if old is None and new is None:
        return IndexWrite()

    def units(entry: Item) -> tuple[str, int]:
        return key_text(entry[index.hash_key]), write_units(item_size(entry) + INDEX_OVERHEAD)

    if old is None:
        assert new is not None
        return IndexWrite(puts=(units(new),))
    if new is None:
        return IndexWrite(deletes=(units(old),))
    key_attrs = set(index.key_attributes) | set(table.key_attributes)
    old_key = {k: v for k, v in old.items() if k in key_attrs}
    new_key = {k: v for k, v in new.items() if k in key_attrs}
    if not _same(old_key, new_key):
        return IndexWrite(puts=(units(new),), deletes=(units(old),))
    if _same(old, new):
        return IndexWrite()
    return IndexWrite(puts=(units(new),))


# ---- recorded figures (plain dataclasses) --------------------------------------------------------


@dataclass
class IndexStats:
    name: str
    kind: str
    projection: str
    hash_key: str
    wru: int = 0
    rru: float = 0.0
    puts: int = 0
    deletes: int = 0
    wru_by_hash_key: dict[str, int] = field(default_factory=dict)


@dataclass
class TableStats:
    name: str
    hash_key: str
    wru: int = 0  # the table's own writes (indexes not included)
    rru: float = 0.0  # reads of the table and of its indexes
    operations: dict[str, int] = field(default_factory=dict)  # item-level, e.g. "UpdateItem"
    failed_conditions: int = 0
    max_item_size: int = 0
    wru_by_hash_key: dict[str, int] = field(default_factory=dict)
    indexes: dict[str, IndexStats] = field(default_factory=dict)

    @property
    def index_wru(self) -> int:
        return sum(i.wru for i in self.indexes.values())

    @property
    def total_wru(self) -> int:
        return self.wru + self.index_wru


@dataclass
class MeterSnapshot:
    tables: dict[str, TableStats] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # "service.Operation" -> requests
    billable: dict[str, int] = field(default_factory=dict)  # "service.Operation" -> 64 KB units
    unmetered: dict[str, int] = field(default_factory=dict)  # DynamoDB calls not priced

    @property
    def wru(self) -> int:
        return sum(t.total_wru for t in self.tables.values())

    @property
    def rru(self) -> float:
        return sum(t.rru for t in self.tables.values())

    def count(self, prefix: str) -> int:
        """Calls whose "service.Operation" starts with prefix (e.g. "sqs." or "sns.Publish")."""
        return sum(n for name, n in self.calls.items() if name.startswith(prefix))


# ---- the meter -------------------------------------------------------------------------------------


@dataclass
class _Target:
    table: str
    key: Item
    action: str  # PutItem | UpdateItem | DeleteItem | ConditionCheck
    operation: str  # what is recorded, e.g. "TransactWriteItems.Update"


def _key_id(key: Item) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def _table_name(name: str) -> str:
    return name.split(":table/", 1)[1].split("/", 1)[0] if name.startswith("arn:") else name


def _typed(item: dict[str, Any]) -> Item:
    """DynamoDB JSON, also when a boto3 resource handed in plain Python values."""

    def is_typed(v: Any) -> bool:
        return isinstance(v, dict) and len(v) == 1 and next(iter(v)) in TYPE_TAGS

    if all(is_typed(v) for v in item.values()):
        return item
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    return {k: v if is_typed(v) else ser.serialize(v) for k, v in item.items()}


class DdbMeter:
    """See the module docstring. One meter installed at a time."""

    _installed: DdbMeter | None = None

    def __init__(self, transaction_index_factor: int = 1, reuse_images: bool = False) -> None:
        """reuse_images: take an item's image after a metered write as its image before the
        next one instead of reading it again (a third fewer reads, for long benches). Exact
        as long as every write to the tables goes through botocore in this process: a write
        made while paused forgets every image."""
        self.transaction_index_factor = transaction_index_factor
        self.reuse_images = reuse_images
        self._images: dict[tuple[str, str, str], Item | None] = {}
        self._lock = threading.RLock()
        self._local = threading.local()
        self._layouts: dict[tuple[str, str], TableLayout] = {}
        self._raw: dict[str, Any] = {}
        self._original: Callable[..., Any] | None = None
        self._snap = MeterSnapshot()
        self.overhead_seconds = 0.0  # time spent in the meter's own work (not in the calls)
        self.total_calls = 0  # every counted call since install (never reset)

    # -- lifecycle

    def install(self) -> DdbMeter:
        if DdbMeter._installed is not None:
            raise RuntimeError("a DdbMeter is already installed")
        original = botocore.client.BaseClient._make_api_call
        meter = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            return meter._dispatch(client, operation_name, api_params)

        self._original = original
        botocore.client.BaseClient._make_api_call = _make_api_call
        DdbMeter._installed = self
        return self

    def close(self) -> None:
        if self._original is not None:
            botocore.client.BaseClient._make_api_call = self._original
            self._original = None
            DdbMeter._installed = None

    def __enter__(self) -> DdbMeter:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made in this block (this thread) are neither counted nor metered."""
        previous = getattr(self._local, "inside", False)
        self._local.inside = True
        try:
            yield
        finally:
            self._local.inside = previous

    def record_call(self, name: str, billable: int | None = None) -> None:
        """Count a call made while paused, e.g. a poll kept only when it returned something."""
        with self._lock:
            self._snap.calls[name] = self._snap.calls.get(name, 0) + 1
            self.total_calls += 1
            if billable is not None:
                self._snap.billable[name] = self._snap.billable.get(name, 0) + billable

    def snapshot(self) -> MeterSnapshot:
        with self._lock:
            return copy.deepcopy(self._snap)

    def reset(self) -> MeterSnapshot:
        """Start from zero; returns what was recorded so far."""
        with self._lock:
            snap, self._snap = self._snap, MeterSnapshot()
            return snap

    # -- the patched call

    def _dispatch(self, client: Any, operation: str, params: dict[str, Any]) -> Any:
        assert self._original is not None
        original = self._original
        if getattr(self._local, "inside", False):
            if (
                self._images
                and operation in WRITE_OPS | SCHEMA_OPS
                and client.meta.service_model.service_name == "dynamodb"
            ):
                with self._lock:
                    self._images.clear()
            return original(client, operation, params)
        started = time.perf_counter()
        in_call = 0.0

        def call() -> Any:
            nonlocal in_call
            t0 = time.perf_counter()
            try:
                return original(client, operation, params)
            finally:
                in_call += time.perf_counter() - t0

        try:
            return self._metered(client, operation, params, call)
        finally:
            overhead = time.perf_counter() - started - in_call
            with self._lock:
                self.overhead_seconds += overhead

    def _metered(
        self, client: Any, operation: str, params: dict[str, Any], call: Callable[[], Any]
    ) -> Any:
        service = client.meta.service_model.service_name
        name = f"{service}.{operation}"
        with self._lock:
            self._snap.calls[name] = self._snap.calls.get(name, 0) + 1
            self.total_calls += 1
        if service != "dynamodb":
            result = call()
            self._bill(name, params, result)
            return result
        region = client.meta.region_name
        if operation in SCHEMA_OPS:
            with self._lock:
                self._layouts.clear()
                self._images.clear()
            return call()
        if operation in UNPRICED_OPS:
            self._unmetered(operation)
            return call()
        if operation in WRITE_OPS:
            return self._write(region, operation, params, call)
        if operation in READ_OPS:
            result = call()
            with self.paused():
                self._read(region, operation, params, result)
            return result
        return call()

    # -- helpers on the meter's own client

    def _client(self, region: str) -> Any:
        raw = self._raw.get(region)
        if raw is None:
            import boto3

            with self.paused():
                raw = boto3.session.Session().client("dynamodb", region_name=region)
            self._raw[region] = raw
        return raw

    def layout(self, region: str, table: str) -> TableLayout:
        name = _table_name(table)
        with self._lock:
            found = self._layouts.get((region, name))
        if found is None:
            with self.paused():
                description = self._client(region).describe_table(TableName=name)["Table"]
            found = layout_from_description(description)
            with self._lock:
                self._layouts[(region, name)] = found
        return found

    def _get(self, region: str, table: str, key: Item) -> Item | None:
        with self.paused():
            got = self._client(region).get_item(
                TableName=_table_name(table), Key=key, ConsistentRead=True
            )
        item: Item | None = got.get("Item")
        return item

    def _before(self, region: str, table: str, key: Item) -> Item | None:
        """The item before a write: the image the previous metered write left (when images
        are reused), else read now."""
        if self.reuse_images:
            with self._lock:
                ident = (region, _table_name(table), _key_id(key))
                if ident in self._images:
                    return self._images.pop(ident)
        return self._get(region, table, key)

    def _remember(self, region: str, table: str, key: Item, image: Item | None) -> None:
        if self.reuse_images:
            with self._lock:
                self._images[(region, _table_name(table), _key_id(key))] = image

    def _stats(self, layout: TableLayout) -> TableStats:
        stats = self._snap.tables.get(layout.name)
        if stats is None:
            stats = TableStats(layout.name, layout.hash_key)
            for ix in layout.indexes:
                stats.indexes[ix.name] = IndexStats(ix.name, ix.kind, ix.projection, ix.hash_key)
            self._snap.tables[layout.name] = stats
        return stats

    def _unmetered(self, operation: str) -> None:
        with self._lock:
            self._snap.unmetered[operation] = self._snap.unmetered.get(operation, 0) + 1

    def _bill(self, name: str, params: dict[str, Any], result: Any) -> None:
        units = _billable_units(name, params, result)
        if units is not None:
            with self._lock:
                self._snap.billable[name] = self._snap.billable.get(name, 0) + units

    # -- writes

    def _targets(self, region: str, operation: str, params: dict[str, Any]) -> list[_Target]:
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            layout = self.layout(region, params["TableName"])
            key = (
                layout.key_of(_typed(params["Item"]))
                if operation == "PutItem"
                else _typed(params["Key"])
            )
            return [_Target(layout.name, key, operation, operation)]
        targets = []
        if operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                ((kind, body),) = entry.items()
                layout = self.layout(region, body["TableName"])
                key = layout.key_of(_typed(body["Item"])) if kind == "Put" else _typed(body["Key"])
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(
                    kind, "ConditionCheck"
                )
                targets.append(_Target(layout.name, key, action, f"{operation}.{kind}"))
        else:  # BatchWriteItem
            for table, requests in params.get("RequestItems", {}).items():
                layout = self.layout(region, table)
                for request in requests:
                    if "PutRequest" in request:
                        key = layout.key_of(_typed(request["PutRequest"]["Item"]))
                        targets.append(_Target(layout.name, key, "PutItem", f"{operation}.Put"))
                    else:
                        key = _typed(request["DeleteRequest"]["Key"])
                        targets.append(
                            _Target(layout.name, key, "DeleteItem", f"{operation}.Delete")
                        )
        return targets

    def _write(
        self, region: str, operation: str, params: dict[str, Any], call: Callable[[], Any]
    ) -> Any:
        try:
            targets = self._targets(region, operation, params)
            before = [self._before(region, t.table, t.key) for t in targets]
        except (ClientError, KeyError, ValueError):
            self._unmetered(operation)
            return call()
        factor = 2 if operation == "TransactWriteItems" else 1
        try:
            result = call()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            failed = code in ("ConditionalCheckFailedException", "TransactionCanceledException")
            with self._lock:
                for target, old in zip(targets, before, strict=True):
                    if failed:
                        stats = self._stats(self.layout(region, target.table))
                        self._charge_table(stats, target, old, None, factor, failed=True)
                        self._remember(region, target.table, target.key, old)
                    else:
                        self._images.pop((region, target.table, _key_id(target.key)), None)
            raise
        unprocessed = set()
        if operation == "BatchWriteItem":
            for table, requests in (result.get("UnprocessedItems") or {}).items():
                layout = self.layout(region, table)
                for request in requests:
                    body = request.get("PutRequest", {}).get("Item") or request.get(
                        "DeleteRequest", {}
                    ).get("Key")
                    unprocessed.add((layout.name, _key_id(layout.key_of(body))))
        for target, old in zip(targets, before, strict=True):
            if (target.table, _key_id(target.key)) in unprocessed:
                self._remember(region, target.table, target.key, old)
                continue
            layout = self.layout(region, target.table)
            new = (
                old
                if target.action == "ConditionCheck"
                else self._get(region, target.table, target.key)
            )
            self._remember(region, target.table, target.key, new)
            with self._lock:
                stats = self._stats(layout)
                self._charge_table(stats, target, old, new, factor, failed=False)
                if target.action == "ConditionCheck":
                    continue
                for ix in layout.indexes:
                    change = index_write(layout, ix, old, new)
                    if not change.puts and not change.deletes:
                        continue
                    ixs = stats.indexes[ix.name]
                    f = self.transaction_index_factor if factor == 2 else 1
                    for hash_value, units in change.puts + change.deletes:
                        ixs.wru += units * f
                        ixs.wru_by_hash_key[hash_value] = (
                            ixs.wru_by_hash_key.get(hash_value, 0) + units * f
                        )
                    ixs.puts += len(change.puts)
                    ixs.deletes += len(change.deletes)
        return result

    def _charge_table(
        self,
        stats: TableStats,
        target: _Target,
        old: Item | None,
        new: Item | None,
        factor: int,
        failed: bool,
    ) -> None:
        old_size, new_size = item_size(old), item_size(new)
        units = write_units(old_size if failed else max(old_size, new_size)) * factor
        stats.wru += units
        hash_value = key_text(target.key[stats.hash_key])
        stats.wru_by_hash_key[hash_value] = stats.wru_by_hash_key.get(hash_value, 0) + units
        op = target.operation + (" (condition failed)" if failed else "")
        stats.operations[op] = stats.operations.get(op, 0) + 1
        stats.failed_conditions += int(failed)
        stats.max_item_size = max(stats.max_item_size, old_size, new_size)

    # -- reads

    def _charge_read(
        self, layout: TableLayout, op: str, index: str | None, sizes: list[int], per_unit: float
    ) -> None:
        units = max(1, math.ceil(sum(sizes) / READ_UNIT)) * per_unit
        with self._lock:
            stats = self._stats(layout)
            stats.rru += units
            stats.max_item_size = max([stats.max_item_size, *sizes])
            stats.operations[op] = stats.operations.get(op, 0) + 1
            if index and index in stats.indexes:
                stats.indexes[index].rru += units

    def _read(self, region: str, operation: str, params: dict[str, Any], result: Any) -> None:
        try:
            self._read_inner(region, operation, params, result)
        except (ClientError, KeyError, ValueError):
            self._unmetered(operation)

    def _read_inner(self, region: str, operation: str, params: dict[str, Any], result: Any) -> None:
        if operation == "GetItem":
            layout = self.layout(region, params["TableName"])
            item = result.get("Item")
            if item is not None and (
                "ProjectionExpression" in params or "AttributesToGet" in params
            ):
                item = self._get(region, layout.name, _typed(params["Key"]))
            strong = bool(params.get("ConsistentRead"))
            self._charge_read(layout, "GetItem", None, [item_size(item)], 1.0 if strong else 0.5)
        elif operation in ("BatchGetItem", "TransactGetItems"):
            self._batch_read(region, operation, params, result)
        else:
            self._query(region, operation, params, result)

    def _batch_read(self, region: str, operation: str, params: dict[str, Any], result: Any) -> None:
        requested: list[tuple[TableLayout, Item, float]] = []
        if operation == "TransactGetItems":
            for entry in params.get("TransactItems", []):
                get = entry["Get"]
                requested.append((self.layout(region, get["TableName"]), _typed(get["Key"]), 2.0))
        else:
            unprocessed = result.get("UnprocessedKeys") or {}
            for table, spec in params.get("RequestItems", {}).items():
                layout = self.layout(region, table)
                skip = {_key_id(k) for k in (unprocessed.get(table) or {}).get("Keys", [])}
                per = 1.0 if spec.get("ConsistentRead") else 0.5
                for key in spec.get("Keys", []):
                    if _key_id(key) not in skip:
                        requested.append((layout, _typed(key), per))
        for layout, key, per in requested:
            item = self._get(region, layout.name, key)
            self._charge_read(layout, operation, None, [item_size(item)], per)

    def _query(self, region: str, operation: str, params: dict[str, Any], result: Any) -> None:
        layout = self.layout(region, params["TableName"])
        index_name = params.get("IndexName")
        index = layout.index(index_name) if index_name else None
        reshaped = any(
            k in params for k in ("FilterExpression", "ProjectionExpression", "AttributesToGet")
        ) or params.get("Select") in ("COUNT", "SPECIFIC_ATTRIBUTES")
        items: list[Item] = result.get("Items", [])
        if reshaped:
            rerun = _without_reshaping(params)
            with self.paused():
                page = getattr(self._client(region), _snake(operation))(**rerun)
            items = page.get("Items", [])
        if index is not None:
            sizes = [item_size(index_entry(layout, index, i) or i) for i in items]
        else:
            sizes = [item_size(i) for i in items]
        strong = bool(params.get("ConsistentRead")) and (index is None or index.kind == "LSI")
        op = f"{operation} {index_name}" if index_name else operation
        self._charge_read(layout, op, index_name, sizes, 1.0 if strong else 0.5)


# ---- helpers ---------------------------------------------------------------------------------------


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _without_reshaping(params: dict[str, Any]) -> dict[str, Any]:
    """A Query/Scan reading the same items, returning them whole (no filter, no projection)."""
    out = {
        k: v
        for k, v in params.items()
        if k
        not in (
            "FilterExpression",
            "ProjectionExpression",
            "AttributesToGet",
            "Select",
            "QueryFilter",
            "ScanFilter",
            "ConditionalOperator",
            "ReturnConsumedCapacity",
        )
    }
    used = set(re.findall(r"[#:][A-Za-z0-9_]+", str(out.get("KeyConditionExpression", ""))))
    names = {n: v for n, v in (out.get("ExpressionAttributeNames") or {}).items() if n in used}
    values = {n: v for n, v in (out.get("ExpressionAttributeValues") or {}).items() if n in used}
    out.pop("ExpressionAttributeNames", None)
    out.pop("ExpressionAttributeValues", None)
    if names:
        out["ExpressionAttributeNames"] = names
    if values:
        out["ExpressionAttributeValues"] = values
    return out


def _payload(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode())
    return len(json.dumps(value, default=str).encode())


def _chunks(size: int) -> int:
    return max(1, math.ceil(size / CHUNK))


def _billable_units(name: str, params: dict[str, Any], result: Any) -> int | None:
    """64 KB units AWS bills for a request (None: not billed per chunk)."""
    if name == "events.PutEvents":
        return sum(
            _chunks(
                sum(_payload(e.get(k)) for k in ("Source", "DetailType", "Detail"))
                + sum(_payload(r) for r in e.get("Resources", []))
                + (14 if "Time" in e else 0)
            )
            for e in params.get("Entries", [])
        )
    if name == "sns.Publish":
        return _chunks(_payload(params.get("Message")) + _payload(params.get("MessageAttributes")))
    if name == "sns.PublishBatch":
        return sum(
            _chunks(_payload(e.get("Message")) + _payload(e.get("MessageAttributes")))
            for e in params.get("PublishBatchRequestEntries", [])
        )
    if name == "sqs.SendMessage":
        return _chunks(
            _payload(params.get("MessageBody")) + _payload(params.get("MessageAttributes"))
        )
    if name == "sqs.SendMessageBatch":
        return _chunks(
            sum(
                _payload(e.get("MessageBody")) + _payload(e.get("MessageAttributes"))
                for e in params.get("Entries", [])
            )
        )
    if name == "sqs.ReceiveMessage":
        return _chunks(sum(_payload(m.get("Body")) for m in (result or {}).get("Messages", [])))
    if name.startswith("sqs."):
        return 1
    return None


def _add(into: dict[str, Any], other: dict[str, Any]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def merge_snapshots(snapshots: list[MeterSnapshot]) -> MeterSnapshot:
    """One snapshot adding up several (e.g. from worker processes, each with its own moto)."""
    out = MeterSnapshot()
    for snap in snapshots:
        for attr in ("calls", "billable", "unmetered"):
            _add(getattr(out, attr), getattr(snap, attr))
        for name, table in snap.tables.items():
            mine = out.tables.get(name)
            if mine is None:
                out.tables[name] = copy.deepcopy(table)
                continue
            mine.wru += table.wru
            mine.rru += table.rru
            mine.failed_conditions += table.failed_conditions
            mine.max_item_size = max(mine.max_item_size, table.max_item_size)
            _add(mine.operations, table.operations)
            _add(mine.wru_by_hash_key, table.wru_by_hash_key)
            for ix_name, ix in table.indexes.items():
                got = mine.indexes.get(ix_name)
                if got is None:
                    mine.indexes[ix_name] = copy.deepcopy(ix)
                    continue
                got.wru += ix.wru
                got.rru += ix.rru
                got.puts += ix.puts
                got.deletes += ix.deletes
                _add(got.wru_by_hash_key, ix.wru_by_hash_key)
    return out

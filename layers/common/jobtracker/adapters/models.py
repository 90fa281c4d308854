"""The table, as pynamodb models: the one description of its items, names and indexes.

One table holds every kind of item (hash key `pk` only):

- JobRecord (hot):  pk=<job id>, k=J. The job's fields and its CURRENT attempt (map `a`, with
                    that attempt's own state history). A job submitted with defaults stays under
                    1 KB all its life, so every write of it costs 1 WRU.
- AttemptRecord:    pk=<job id>#<n>, k=A. An earlier attempt, archived when the next one starts.
- IdempotencyKey:   pk=idem#<caller hash>#<key>, k=I, TTL.
- LaunchGovernor:   pk=governor#launches, k=G: the GCRA cell every launcher shares.
- RunningSlots:     pk=limit#<definition>, k=L: the attempts that hold a running slot.
- ArrayCounters:    pk=array#<parent job id>, k=R: an array's size, window and tolerance and its
                    counters (children launched, children finished by final status).
- DependencyEdge:   pk=edge#<dependency id>#<dependent id>, k=E: a job waits on another. Written
                    with the dependent (one per dependency it names), read through by_dependency
                    when the dependency ends; the dependent's id is the key's tail.

Python names are the domain's (Job's and Attempt's fields); the stored names (`attr_name`) are
short because names count towards every item's size, and so towards every write's WRU: with the
long names a default job's item is 1.3 KB, 2 WRU a write instead of 1 (bench/cost.py).
Defaults are not stored (`null=True`, and records.py leaves them out): an absent attribute reads
back as the domain's default.

Indexes: all KEYS_ONLY, range key `c` = created_at, hash keys write-sharded over SHARDS so that
no hash-key value takes more than ~1/SHARDS of an index's writes:

- by_created:    gc = <shard>                   every job, written once
- by_definition: gd = <definition>#<shard>      written once
- by_status:     gx = ACTIVE#<shard> while the job runs, <terminal status>#<shard> after
- by_schedule:   gs = <schedule name>           scheduled jobs only (at most a tick a minute)
- by_dependency: gw = <dependency id>#<shard>   edges only, sharded by the dependent over
                 EDGE_SHARDS: a fan-out's thousands of edges on one job are written at its
                 dependents' submission pace, which one index partition (1,000 writes/s) caps

An array's children are jobs too, under keys of their own (CHILD marks them): gc = C#<shard>,
gx = ACTIVE#C#<shard> / <status>#C#<shard>, no gd. So the top-level lists never read through a
10,000-child array, `?children=true` reads both sets, the reconciler reads both ACTIVE sets,
and a child costs one index write less than a job (no by_definition). A parent's children are
read by their ids (<parent>-<index>), in index order, with no index of their own.

The models are bound to a table at first use (`bind`), never at import: the table's name comes
from the settings of the handler, test or local stack. Region and endpoint are botocore's own
(AWS_REGION, AWS_ENDPOINT_URL), which pynamodb's client reads as every other client does.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.exceptions import PynamoDBException
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

SHARDS = 16
EDGE_SHARDS = 4  # by_dependency's shards per dependency (4,000 edges/s on one job)
ACTIVE = "ACTIVE"  # by_status's key of every job not yet finished
WAITING = "WAITING"  # ...but those blocked on dependencies, which the reconciler reads rarely
CHILD = "C"  # the index keys of arrays' children (see above)


class _Meta:
    table_name: str | None = None  # set by bind()
    billing_mode = "PAY_PER_REQUEST"
    stream_view_type = "NEW_AND_OLD_IMAGES"


class ContainerMap(MapAttribute[str, Any]):
    name = UnicodeAttribute(attr_name="n")
    exit_code = NumberAttribute(attr_name="x", null=True)
    reason = UnicodeAttribute(attr_name="r", null=True)
    essential = BooleanAttribute(attr_name="e", null=True)  # stored only when False


class AttemptMap(MapAttribute[str, Any]):
    """An attempt: the job's current one (JobRecord.current) or an archived one."""

    task_arn = UnicodeAttribute(attr_name="t", null=True)
    last_status = UnicodeAttribute(attr_name="l", null=True)
    version = NumberAttribute(attr_name="v", null=True)
    created_at = UnicodeAttribute(attr_name="c", null=True)
    launched_at = UnicodeAttribute(attr_name="la", null=True)
    started_at = UnicodeAttribute(attr_name="sa", null=True)
    stopped_at = UnicodeAttribute(attr_name="so", null=True)
    stop_code = UnicodeAttribute(attr_name="sc", null=True)
    stopped_reason = UnicodeAttribute(attr_name="sr", null=True)
    containers = ListAttribute(of=ContainerMap, attr_name="k", null=True)
    outcome = UnicodeAttribute(attr_name="o", null=True)
    rule = UnicodeAttribute(attr_name="r", null=True)
    uncounted = BooleanAttribute(attr_name="uc", null=True)
    spot_interruption_at = UnicodeAttribute(attr_name="si", null=True)
    awaiting_decision = BooleanAttribute(attr_name="ad", null=True)
    log_stream = UnicodeAttribute(attr_name="lg", null=True)
    # version (unpadded) -> entry in records.HISTORY_ATTRS' names. Always present (an empty map
    # at first): an event's entry is SET at a path inside it, and a path needs its map.
    history = MapAttribute[str, Any](attr_name="h")


def _index(name: str, hash_attr: str) -> GlobalSecondaryIndex[Any]:
    """A KEYS_ONLY index over a write-sharded hash key, newest first by created_at."""

    class Index(GlobalSecondaryIndex[Any]):
        class Meta:
            index_name = name
            projection = KeysOnlyProjection()

        key = UnicodeAttribute(hash_key=True, attr_name=hash_attr)
        created_at = UnicodeAttribute(range_key=True, attr_name="c")

    Index.__name__ = Index.__qualname__ = f"Index_{name}"
    return Index()


class JobRecord(Model):
    KIND: ClassVar[str] = "J"  # every model's `kind` (k): what an item is, in the one table
    Meta = _Meta  # type: ignore[assignment]  # one Meta for all: one table, bound by bind()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(attr_name="k")
    definition = UnicodeAttribute(attr_name="d")
    spec_json = UnicodeAttribute(attr_name="p", null=True)  # the spec's non-default fields
    current = AttemptMap(attr_name="a")
    status = UnicodeAttribute(attr_name="s")
    created_at = UnicodeAttribute(attr_name="c")
    updated_at = UnicodeAttribute(attr_name="u", null=True)
    attempt = NumberAttribute(attr_name="n")
    not_before = UnicodeAttribute(attr_name="nb", null=True)
    launch_error = UnicodeAttribute(attr_name="le", null=True)
    launch_failures = NumberAttribute(attr_name="lf", null=True)
    launch_waits = NumberAttribute(attr_name="lw", null=True)
    stop_request = UnicodeAttribute(attr_name="sr", null=True)
    stop_requested_at = UnicodeAttribute(attr_name="sa", null=True)
    status_reason = UnicodeAttribute(attr_name="rs", null=True)
    finished_at = UnicodeAttribute(attr_name="f", null=True)
    caller = UnicodeAttribute(attr_name="cl", null=True)
    schedule_name = UnicodeAttribute(attr_name="sc", null=True)
    scheduled_time = UnicodeAttribute(attr_name="st", null=True)
    uncounted = NumberAttribute(attr_name="un", null=True)
    reconcile_failures = NumberAttribute(attr_name="rf", null=True)
    reconcile_failed_at = UnicodeAttribute(attr_name="ra", null=True)
    parent_id = UnicodeAttribute(attr_name="pi", null=True)  # a child of an array: its parent
    array_index = NumberAttribute(attr_name="ai", null=True)  # ...its index (0: not stored)
    array_size = NumberAttribute(attr_name="az", null=True)  # ...and the array's size
    waiting_on = UnicodeSetAttribute(attr_name="w", null=True)  # dependencies not met yet
    has_dependents = BooleanAttribute(attr_name="hd", null=True)  # an edge names this job
    released_at = UnicodeAttribute(attr_name="rl", null=True)
    expires = TTLAttribute(attr_name="x", null=True)  # set when the job ends (RetentionDays)
    # the indexes' hash keys
    created_shard = UnicodeAttribute(attr_name="gc")
    definition_shard = UnicodeAttribute(attr_name="gd", null=True)  # none for a child
    status_shard = UnicodeAttribute(attr_name="gx")
    schedule_key = UnicodeAttribute(attr_name="gs", null=True)

    by_created = _index("by_created", "gc")
    by_definition = _index("by_definition", "gd")
    by_status = _index("by_status", "gx")
    by_schedule = _index("by_schedule", "gs")
    # DependencyEdge's (no job has `gw`): declared on the hot model too, since the table, its
    # indexes and the template's check are made from this one model.
    by_dependency = _index("by_dependency", "gw")


class DependencyEdge(Model):
    KIND: ClassVar[str] = "E"
    Meta = _Meta  # type: ignore[assignment]  # one Meta for all: one table, bound by bind()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(attr_name="k")
    created_at = UnicodeAttribute(attr_name="c")
    dependency_shard = UnicodeAttribute(attr_name="gw")
    expires = TTLAttribute(attr_name="x", null=True)

    by_dependency = _index("by_dependency", "gw")


class AttemptRecord(Model):
    KIND: ClassVar[str] = "A"
    Meta = _Meta  # type: ignore[assignment]  # one Meta for all: one table, bound by bind()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(attr_name="k")
    number = NumberAttribute(attr_name="n")
    attempt = AttemptMap(attr_name="a")
    expires = TTLAttribute(attr_name="x", null=True)


class IdempotencyKey(Model):
    KIND: ClassVar[str] = "I"
    Meta = _Meta  # type: ignore[assignment]  # one Meta for all: one table, bound by bind()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(attr_name="k")
    job_id = UnicodeAttribute()
    body_hash = UnicodeAttribute()
    expires = TTLAttribute(attr_name="x")


class LaunchGovernor(Model):
    KIND: ClassVar[str] = "G"
    Meta = _Meta  # type: ignore[assignment]  # one Meta for all: one table, bound by bind()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(attr_name="k", null=True)
    next_at = NumberAttribute(attr_name="t", null=True)  # GCRA's theoretical arrival time


class RunningSlots(Model):
    KIND: ClassVar[str] = "L"
    Meta = _Meta  # type: ignore[assignment]  # one Meta for all: one table, bound by bind()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(attr_name="k", null=True)
    holders = UnicodeSetAttribute(attr_name="h", null=True)  # "<job id>#<attempt>"


class FinishedMap(MapAttribute[str, Any]):
    """Children finished, by final status: every key present (zero at first), since an ADD
    needs its map to exist."""

    succeeded = NumberAttribute(attr_name="S")
    failed = NumberAttribute(attr_name="F")
    timed_out = NumberAttribute(attr_name="T")
    cancelled = NumberAttribute(attr_name="C")


class ArrayCounters(Model):
    KIND: ClassVar[str] = "R"
    Meta = _Meta  # type: ignore[assignment]  # one Meta for all: one table, bound by bind()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(attr_name="k")
    size = NumberAttribute(attr_name="n")
    max_running = NumberAttribute(attr_name="m", null=True)
    tolerated = NumberAttribute(attr_name="t")  # failures tolerated, as a count
    launched = NumberAttribute(attr_name="l")
    finished = FinishedMap(attr_name="f")
    closed = BooleanAttribute(attr_name="z", null=True)  # no more children will be launched
    # A retry round (retry-failed): its number, the statuses it runs again, its index cursor.
    retry_round = NumberAttribute(attr_name="r", null=True)
    redo = UnicodeAttribute(attr_name="rd", null=True)  # e.g. "FAILED,TIMED_OUT"
    cursor = NumberAttribute(attr_name="i", null=True)
    # Arrays whose children wait on this one's, index by index (mode per_index): a child's end
    # releases theirs (usecases/dependencies.py).
    per_index_dependents = UnicodeSetAttribute(attr_name="pd", null=True)


KINDS: tuple[type[Model], ...] = (
    JobRecord,
    AttemptRecord,
    IdempotencyKey,
    LaunchGovernor,
    RunningSlots,
    ArrayCounters,
    DependencyEdge,
)
_binding = threading.Lock()


def refused(exc: PynamoDBException) -> bool:
    """The write's condition did not hold (any other error is the caller's to see)."""
    return exc.cause_response_code == "ConditionalCheckFailedException"


def bind(table_name: str) -> None:
    """Point every model at `table_name`. They share one Meta (one table) and one connection:
    pynamodb gives each model its own, each with a botocore session and client of its own, and
    a client's first call costs about as much as importing botocore."""
    if _Meta.table_name == table_name and JobRecord._connection is not None:
        return
    with _binding:
        _Meta.table_name = table_name
        for model in KINDS:
            model._connection = None
        shared = JobRecord._get_connection()
        for model in KINDS:
            model._connection = shared


def models_client() -> Any:
    """The botocore client the models call DynamoDB with (tests watch the calls through its
    event hooks)."""
    return JobRecord._get_connection().connection.client


def reset_models() -> None:
    """Forget the models' connections (after the environment changed: a test's moto, the local
    stack): the next call makes a new client from the environment."""
    with _binding:
        _Meta.table_name = None
        for model in KINDS:
            model._connection = None

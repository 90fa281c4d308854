"""Data access: the only module that knows pynamodb and the table layout.

One item per job holds the job and all of its attempts (a map keyed by attempt number), so a
task-state event is applied to attempt and job status with one conditional write. Items:

- job:          pk=<job id>, kind=JOB, attempts={ "1": {...}, "2": {...} }, rev (optimistic lock)
- idempotency:  pk=idem#<caller hash>#<key>, kind=IDEM, job_id, body_hash, expires_at (TTL)

Indexes (all sparse on job items): by_created (gsi_all, created_key), by_status,
by_definition, by_schedule (… , created_key) for GET /jobs; by_watch (watch, watch_at) for the
reconciler: the earliest time a job needs a look (timeout, quiet task, stuck PENDING).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pynamodb.attributes import (
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from jobtracker.config import get_settings
from jobtracker.domain import (
    Attempt,
    Job,
    JobSpec,
    JobStatus,
    TaskState,
    history_key,
    parse_iso,
    plain_numbers,
)
from jobtracker.repository import (
    ApplyResult,
    BadToken,
    FastApply,
    IdempotencyConflict,
    IdempotencyRecord,
    StaleJob,
)

GSI_ALL = "JOB"
WATCH = "W"


class _Index(GlobalSecondaryIndex[Any]):
    class Meta:
        projection = AllProjection()


class ByCreated(_Index):
    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    gsi_all = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ByStatus(_Index):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ByDefinition(_Index):
    class Meta:
        index_name = "by_definition"
        projection = AllProjection()

    definition = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class BySchedule(_Index):
    class Meta:
        index_name = "by_schedule"
        projection = AllProjection()

    schedule_name = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class ByWatch(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by_watch"
        projection = KeysOnlyProjection()

    watch = UnicodeAttribute(hash_key=True)
    watch_at = UnicodeAttribute(range_key=True)


class JobItem(Model):
    class Meta:
        table_name = "jobtracker-jobs"  # bound to the configured name by bind_models()

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="JOB")
    gsi_all = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    definition = UnicodeAttribute(null=True)
    created_key = UnicodeAttribute(null=True)
    schedule_name = UnicodeAttribute(null=True)
    watch = UnicodeAttribute(null=True)
    watch_at = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    attempt = NumberAttribute(default=1)
    attempts = MapAttribute[str, Any](default=dict)
    spec = UnicodeAttribute(null=True)  # JSON: immutable after acceptance
    state = MapAttribute[str, Any](default=dict)  # the job's mutable scalars
    expires_at = NumberAttribute(null=True)
    rev = VersionAttribute()

    by_created = ByCreated()
    by_status = ByStatus()
    by_definition = ByDefinition()
    by_schedule = BySchedule()
    by_watch = ByWatch()


class IdempotencyItem(Model):
    class Meta:
        table_name = "jobtracker-jobs"

    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(default="IDEM")
    job_id = UnicodeAttribute()
    body_hash = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)


_STATE_FIELDS = (
    "not_before",
    "launch_error",
    "launch_failures",
    "stop_request",
    "stop_requested_at",
    "status_reason",
    "finished_at",
    "caller",
    "scheduled_time",
)


def bind_models(table_name: str | None = None) -> None:
    """Point the models at the configured table (and reset pynamodb's cached connections,
    which would otherwise outlive a test's moto context)."""
    name = table_name or get_settings().table_name
    for model in (JobItem, IdempotencyItem):
        model.Meta.table_name = name
        model._connection = None


# ---- conversions ---------------------------------------------------------------------------


def _to_item(job: Job, watch_at: str | None, retention_days: int | None) -> JobItem:
    item = JobItem(
        pk=job.job_id,
        kind="JOB",
        gsi_all=GSI_ALL,
        status=job.status.value,
        definition=job.definition,
        created_key=f"{job.created_at}#{job.job_id}",
        schedule_name=job.schedule_name,
        watch=WATCH if watch_at else None,
        watch_at=watch_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
        attempt=job.attempt,
        attempts={str(n): a.to_dict() for n, a in job.attempts.items()},
        spec=json.dumps(job.spec.to_dict(), separators=(",", ":")),
        state={f: _scalar(getattr(job, f)) for f in _STATE_FIELDS},
    )
    if job.rev:
        item.rev = job.rev
    if job.status.terminal and retention_days and job.finished_at:
        finished = parse_iso(job.finished_at)
        assert finished is not None
        item.expires_at = int((finished + timedelta(days=retention_days)).timestamp())
    return item


def _scalar(value: Any) -> Any:
    # pynamodb serialises by exact type: StrEnum members go in as plain strings.
    return value.value if isinstance(value, StrEnum) else value


def _from_item(item: JobItem) -> Job:
    state = plain_numbers(
        item.state.as_dict() if isinstance(item.state, MapAttribute) else item.state
    )
    attempts_raw = plain_numbers(
        item.attempts.as_dict() if isinstance(item.attempts, MapAttribute) else item.attempts
    )
    job = Job(
        job_id=item.pk,
        spec=JobSpec.from_dict(json.loads(item.spec or "{}")),
        status=JobStatus(item.status),
        created_at=item.created_at or "",
        updated_at=item.updated_at or "",
        attempt=int(item.attempt),
        attempts={int(k): Attempt.from_dict(v) for k, v in (attempts_raw or {}).items()},
        schedule_name=item.schedule_name,
        rev=int(item.rev or 0),
    )
    for f in _STATE_FIELDS:
        if f in (state or {}):
            setattr(job, f, state[f])
    job.launch_failures = int(job.launch_failures or 0)
    return job


def _from_raw(raw: dict[str, Any]) -> Job:
    """A job from a raw DynamoDB item (as ReturnValuesOnConditionCheckFailure hands it back)."""
    item = JobItem.from_raw_data(raw)
    return _from_item(item)


# ---- the DynamoDB repository ---------------------------------------------------------------


class DynamoJobRepository:
    def __init__(self, table_name: str | None = None, retention_days: int | None = None) -> None:
        settings = get_settings()
        self.table_name = table_name or settings.table_name
        self.retention_days = retention_days or settings.retention_days
        bind_models(self.table_name)

    # -- creation

    def create(
        self, job: Job, idem: IdempotencyRecord | None = None, watch_at: str | None = None
    ) -> Job:
        # watch_at from the start: a create that dies before RunTask is found by the reconciler.
        item = _to_item(job, watch_at, self.retention_days)
        if idem is None:
            try:
                item.save(condition=JobItem.pk.does_not_exist())
            except PutError as exc:
                raise StaleJob(job.job_id) from exc
        else:
            idem_item = IdempotencyItem(
                pk=idem.key,
                job_id=idem.job_id,
                body_hash=idem.body_hash,
                expires_at=idem.expires_at,
            )
            try:
                with TransactWrite(connection=self._connection()) as tx:
                    tx.save(item, condition=JobItem.pk.does_not_exist())
                    tx.save(idem_item, condition=IdempotencyItem.pk.does_not_exist())
            except TransactWriteError as exc:
                reasons = exc.cancellation_reasons or []
                if len(reasons) > 1 and reasons[1] and reasons[1].code == "ConditionalCheckFailed":
                    existing = self.get_idempotency(idem.key)
                    if existing is not None:
                        raise IdempotencyConflict(existing.job_id, existing.body_hash) from exc
                raise
        job.rev = int(item.rev or 1)
        return job

    def _connection(self) -> Connection:
        return JobItem._get_connection().connection

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        try:
            item = IdempotencyItem.get(key, consistent_read=True)
        except IdempotencyItem.DoesNotExist:
            return None
        return IdempotencyRecord(
            key=item.pk,
            job_id=item.job_id,
            body_hash=item.body_hash,
            expires_at=int(item.expires_at or 0),
        )

    # -- reads

    def get(self, job_id: str) -> Job | None:
        try:
            item = JobItem.get(job_id, consistent_read=True)
        except JobItem.DoesNotExist:
            return None
        if item.kind != "JOB":
            return None
        return _from_item(item)

    # -- optimistic full write

    def save(self, job: Job, watch_at: str | None) -> Job:
        item = _to_item(job, watch_at, self.retention_days)
        try:
            item.save()  # VersionAttribute: condition rev == job.rev, then rev + 1
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise StaleJob(job.job_id) from exc
            raise
        job.rev = int(item.rev)
        return job

    # -- the one-write path for task-state events

    def apply_state(
        self,
        job_id: str,
        attempt: int,
        state: TaskState,
        job_status: JobStatus | None,
        allowed_from: frozenset[JobStatus],
    ) -> FastApply:
        """Apply a newer non-terminal state with one conditional UpdateItem and no read.

        On refusal DynamoDB hands the stored item back (ReturnValuesOnConditionCheckFailure),
        so telling a duplicate from a stale event or a conflict costs no extra read.
        """
        a = JobItem.attempts[str(attempt)]
        actions = [
            a["last_status"].set(state.last_status),
            a["version"].set(state.version),
            a["history"][history_key(state.version)].set(state.history_entry()),
            # The event names its task: JOB_ATTEMPT in the overrides ties it to this attempt.
            a["task_arn"].set(state.task_arn),
            JobItem.rev.add(1),
        ]
        if state.started_at:
            actions.append(a["started_at"].set(state.started_at))
        if state.desired_status == "STOPPED" and state.spot_interruption:
            actions.append(a["spot_interruption_at"].set(state.observed_at))
        condition = (JobItem.attempt == attempt) & (
            a["version"].does_not_exist() | (a["version"] < state.version)
        )
        if job_status is not None:
            actions.append(JobItem.status.set(job_status.value))
            actions.append(JobItem.updated_at.set(state.observed_at or ""))
        condition &= JobItem.status.is_in(*[s.value for s in allowed_from])
        raw = self._update_returning_old(job_id, actions, condition)
        if raw is None:
            return FastApply(ApplyResult.APPLIED)
        if not raw:
            return FastApply(ApplyResult.UNKNOWN)
        job = _from_raw(raw)
        stored = job.attempts.get(attempt)
        if stored is None:
            return FastApply(ApplyResult.UNKNOWN, job)
        if stored.version == state.version:
            return FastApply(ApplyResult.DUPLICATE, job)
        if stored.version > state.version:
            return FastApply(ApplyResult.STALE, job)
        return FastApply(ApplyResult.CONFLICT, job)

    def record_history(self, job_id: str, attempt: int, state: TaskState) -> bool:
        """Keep an out-of-order (older) state in the attempt's history; never its fields."""
        a = JobItem.attempts[str(attempt)]
        key = history_key(state.version)
        actions = [a["history"][key].set(state.history_entry()), JobItem.rev.add(1)]
        condition = a["history"].exists() & a["history"][key].does_not_exist()
        return self._update_returning_old(job_id, actions, condition) is None

    def _update_returning_old(
        self, job_id: str, actions: list[Any], condition: Any
    ) -> dict[str, Any] | None:
        """UpdateItem; None when applied, else the stored item ({} when there is none).

        pynamodb builds and serialises the expression; the call goes to its botocore client
        because pynamodb's own update() drops the item DynamoDB returns on a failed condition.
        """
        conn = self._connection()
        kwargs = conn.get_operation_kwargs(
            self.table_name,
            job_id,
            actions=actions,
            condition=condition,
            return_values_on_condition_failure="ALL_OLD",
        )
        from botocore.exceptions import ClientError

        try:
            conn.client.update_item(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return exc.response.get("Item") or {}
        return None

    # -- listing

    def list_jobs(
        self,
        status: str | None,
        definition: str | None,
        schedule: str | None,
        limit: int,
        token: str | None,
    ) -> tuple[list[Job], str | None]:
        index: Any
        if schedule:
            index, hash_value, name = JobItem.by_schedule, schedule, "schedule"
        elif status:
            index, hash_value, name = JobItem.by_status, status, "status"
        elif definition:
            index, hash_value, name = JobItem.by_definition, definition, "definition"
        else:
            index, hash_value, name = JobItem.by_created, GSI_ALL, "all"
        start_key = _decode_token(token, name) if token else None
        condition = None
        if status and name != "status":
            condition = JobItem.status == status
        if definition and name != "definition":
            cond = JobItem.definition == definition
            condition = cond if condition is None else condition & cond
        jobs: list[Job] = []
        last_key = start_key
        # A filter is applied after DynamoDB's Limit: page until the page is full.
        for _ in range(20):
            result = index.query(
                hash_value,
                scan_index_forward=False,
                limit=limit - len(jobs),
                filter_condition=condition,
                last_evaluated_key=last_key,
            )
            for item in result:
                jobs.append(_from_item(item))
            last_key = result.last_evaluated_key
            if not last_key or len(jobs) >= limit:
                break
        return jobs, (_encode_token(last_key, name) if last_key else None)

    # -- reconciler

    def due_for_watch(self, now: str, limit: int) -> list[str]:
        result = JobItem.by_watch.query(WATCH, JobItem.watch_at <= now, limit=limit)
        return [item.pk for item in result]


_TOKEN_KEYS = {"pk", "created_key", "gsi_all", "status", "definition", "schedule_name"}


def _encode_token(key: dict[str, Any], index: str) -> str:
    payload = json.dumps({"i": index, "k": key}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode_token(token: str, index: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise BadToken("next_token is not a token this API issued") from exc
    if not isinstance(payload, dict) or payload.get("i") != index:
        raise BadToken("next_token belongs to a different query (filters changed)")
    key = payload.get("k")
    if (
        not isinstance(key, dict)
        or not key
        or not set(key) <= _TOKEN_KEYS
        or not all(
            isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str)
            for v in key.values()
        )
    ):
        raise BadToken("next_token is not a token this API issued")
    return key


@lru_cache(maxsize=1)
def default_repository() -> DynamoJobRepository:
    return DynamoJobRepository()


def create_table(table_name: str | None = None) -> None:
    """Create the table as the template declares it (tests and the local stack)."""
    bind_models(table_name)
    if not JobItem.exists():
        JobItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)


def job_from_image(image: dict[str, Any] | None) -> Job | None:
    """A job from a stream image (DynamoDB JSON); None for other item kinds."""
    if not image or image.get("kind", {}).get("S") != "JOB":
        return None
    return _from_raw(image)

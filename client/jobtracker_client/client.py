"""The Python client of the jobtracker HTTP API: submit, get, list, wait, cancel, rerun, logs,
schedules, stats.

Every request is signed with SigV4 for `execute-api` (API Gateway's IAM authorization) using
botocore's credential chain, or with the credentials of the local stack. Answers are the API's
own view classes (jobtracker.edge.views, pydantic models), so a caller gets
typed objects.
"""

from __future__ import annotations

import builtins
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol, TypeVar

from pydantic import TypeAdapter

from jobtracker.core.domain import TERMINAL_STATUSES
from jobtracker.edge.pages import LOG_PAGE, MAX_JOBS_PAGE, SCHEDULE_RUNS
from jobtracker.edge.views import (
    DefinitionList,
    DefinitionView,
    JobSummary,
    JobView,
    LogLine,
    LogsView,
    ScheduleView,
    StatsView,
)

TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)
V = TypeVar("V")


@cache
def _reader(view: type) -> TypeAdapter[Any]:
    return TypeAdapter(view)


def _read(view: type[V], data: Any) -> V:
    """An answer as the API's view class (edge/views.py), its types checked; fields a newer API
    added are ignored."""
    result: V = _reader(view).validate_python(data)  # type: ignore[arg-type]
    return result


class ApiError(Exception):
    """The API refused a request (its code, message and field errors), or could not be reached
    (status 0)."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []


class WaitTimeout(Exception):
    def __init__(self, job: JobView) -> None:
        super().__init__(f"{job.id} still {job.status}")
        self.job = job


class Auth(Protocol):
    def headers(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        """The headers that authenticate this request."""
        ...


@dataclass(frozen=True)
class Bearer:
    """The local stack's bearer token (what curl uses)."""

    token: str

    def headers(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class SigV4:
    """Signs as API Gateway's IAM authorization expects: SigV4, service execute-api."""

    def __init__(self, credentials: Any, region: str) -> None:
        self.credentials = credentials  # botocore Credentials (refreshable ones refresh)
        self.region = region

    @classmethod
    def from_chain(cls, region: str | None = None, profile: str | None = None) -> SigV4:
        """Credentials and region as the AWS CLI finds them (env, profile, SSO, instance...)."""
        import botocore.session

        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise ApiError(0, "no_credentials", "no AWS credentials found (see `aws configure`)")
        return cls(credentials, region or session.get_config_variable("region") or "us-east-1")

    @classmethod
    def static(cls, access_key: str, secret_key: str, region: str) -> SigV4:
        from botocore.credentials import Credentials

        return cls(Credentials(access_key, secret_key), region)

    def headers(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(
            request
        )
        return {k: v for k, v in request.headers.items() if k not in headers}


# Waiting: poll often at first, then back off (a long job is not asked every second).
FIRST_POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 15.0
POLL_GROWTH = 1.5
# Transient answers worth asking again (throttled, gateway hiccups), a few times, with jitter.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRIES = 4


class JobTracker:
    def __init__(
        self,
        api_url: str,
        auth: Auth,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock

    # ---- where the API is ----------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        api: str | None = None,
        stack: str | None = None,
        region: str | None = None,
        profile: str | None = None,
    ) -> JobTracker:
        """`api` (a URL), else a CloudFormation stack's ApiUrl output, else the local stack
        that is running (see jobtracker_client.endpoints)."""
        from jobtracker_client.endpoints import resolve

        return resolve(api=api, stack=stack, region=region, profile=profile)

    # ---- jobs ------------------------------------------------------------------------------------

    def submit(
        self,
        definition: str,
        parameters: dict[str, Any] | None = None,
        *,
        environment: dict[str, str] | None = None,
        command: list[str] | None = None,
        retry: dict[str, Any] | None = None,
        timeout_seconds: int | None = None,
        tags: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        array: dict[str, Any] | None = None,
        depends_on: list[dict[str, str]] | None = None,
    ) -> JobView:
        """`array`: {"size": N, "max_running": M, "tolerated_failures": K} makes an array job
        of N children (JOB_ARRAY_INDEX 0..N-1). `depends_on`: [{"job_id": ID, "condition":
        "succeeded" | "finished" | "failed", "mode": "job" | "per_index"}]: it waits (WAITING)
        until they end as asked."""
        body: dict[str, Any] = {"definition": definition}
        optional = {
            "parameters": parameters,
            "environment": environment,
            "command": command,
            "retry": retry,
            "timeout_seconds": timeout_seconds,
            "tags": tags,
            "array": array,
            "depends_on": depends_on,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _read(JobView, self._call("POST", "/jobs", body=body, headers=headers))

    def get(self, job_id: str) -> JobView:
        return _read(JobView, self._call("GET", f"/jobs/{_segment(job_id)}"))

    def list(
        self,
        status: str | None = None,
        definition: str | None = None,
        schedule: str | None = None,
        limit: int | None = None,
        page_size: int = MAX_JOBS_PAGE,
        tag: str | None = None,
    ) -> Iterator[JobSummary]:
        """Newest first, following next_token across pages; stops after `limit` jobs."""
        filters = {"status": status, "definition": definition, "schedule": schedule, "tag": tag}
        return self._jobs("/jobs", filters, limit, page_size)

    def children(
        self, job_id: str, status: str | None = None, limit: int | None = None
    ) -> Iterator[JobSummary]:
        """An array's children in index order, following next_token; stops after `limit`."""
        path = f"/jobs/{_segment(job_id)}/children"
        return self._jobs(path, {"status": status}, limit, MAX_JOBS_PAGE)

    def dependents(self, job_id: str, limit: int | None = None) -> Iterator[JobSummary]:
        """The jobs that wait (or waited) on `job_id`, following next_token."""
        path = f"/jobs/{_segment(job_id)}/dependents"
        return self._jobs(path, {}, limit, MAX_JOBS_PAGE)

    def _jobs(
        self, path: str, filters: dict[str, str | None], limit: int | None, page_size: int
    ) -> Iterator[JobSummary]:
        """The jobs a list route answers, page after page, no page larger than still wanted."""
        token: str | None = None
        given = 0
        while True:
            size = page_size if limit is None else min(page_size, limit - given)
            query = {**filters, "limit": str(size), "next_token": token}
            page = self._call("GET", path, query=query)
            for job in page["jobs"]:
                yield _read(JobSummary, job)
                given += 1
                if limit is not None and given >= limit:
                    return
            token = page.get("next_token")
            if not token:
                return

    def cancel(self, job_id: str, reason: str | None = None) -> JobView:
        body = {"reason": reason} if reason else {}
        return _read(JobView, self._call("POST", f"/jobs/{_segment(job_id)}/cancel", body=body))

    def retry_failed(self, job_id: str) -> JobView:
        """A finished array's failed children run again (same indexes, same parent)."""
        return _read(JobView, self._call("POST", f"/jobs/{_segment(job_id)}/retry-failed"))

    def rerun(self, job_id: str, idempotency_key: str | None = None) -> JobView:
        """A new job with the same definition and submission as `job_id`."""
        old = self.get(job_id)
        user_tags = {k: v for k, v in old.tags.items() if not k.startswith("jobtracker:")}
        return self.submit(
            old.definition,
            old.parameters,
            environment=old.environment or None,
            command=old.command,
            retry=old.retry_overrides or None,
            timeout_seconds=old.timeout_seconds,
            tags=user_tags or None,
            idempotency_key=idempotency_key,
            array=_array_spec(old),
        )

    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        on_change: Callable[[JobView], None] | None = None,
    ) -> JobView:
        """Until the job is terminal; `on_change` sees every new status or attempt. Raises
        WaitTimeout after `timeout` seconds (the job goes on)."""
        deadline = None if timeout is None else self.clock() + timeout
        poll = FIRST_POLL_SECONDS
        seen: tuple[Any, ...] | None = None
        while True:
            job = self.get(job_id)
            # An array's parent moves by its children's summary while its status stays.
            summary = job.array.summary.model_dump() if job.array else None
            now = (job.status, job.attempt, job.status_reason, str(summary))
            if now != seen:
                seen = now
                poll = FIRST_POLL_SECONDS  # something moves: look again soon
                if on_change is not None:
                    on_change(job)
            if job.status in TERMINAL:
                return job
            if deadline is not None and self.clock() >= deadline:
                raise WaitTimeout(job)
            pause = poll if deadline is None else min(poll, max(0.0, deadline - self.clock()))
            self.sleep(pause)
            poll = min(MAX_POLL_SECONDS, poll * POLL_GROWTH)

    def logs_page(
        self,
        job_id: str,
        attempt: int | None = None,
        token: str | None = None,
        limit: int = LOG_PAGE,
    ) -> LogsView:
        query = {
            "attempt": None if attempt is None else str(attempt),
            "limit": str(limit),
            "next_token": token,
        }
        return _read(LogsView, self._call("GET", f"/jobs/{_segment(job_id)}/logs", query=query))

    def logs(
        self,
        job_id: str,
        attempt: int | None = None,
        follow: bool = False,
        poll_seconds: float = 2.0,
    ) -> Iterator[LogLine]:
        """Every line of the attempt (default: the newest), oldest first. With `follow`, keeps
        reading while the attempt runs and ends once it has finished and nothing more came."""
        token: str | None = None
        while True:
            page = self.logs_page(job_id, attempt, token)
            yield from page.events
            attempt = page.attempt  # follow the attempt we started on, not a later retry
            caught_up = not page.events or page.next_token in (None, token)
            token = page.next_token or token
            if caught_up:
                if not follow or page.finished:
                    return
                self.sleep(poll_seconds)

    # ---- schedules and figures -------------------------------------------------------------------

    def schedules(self, runs: int = SCHEDULE_RUNS) -> builtins.list[ScheduleView]:  # not self.list
        """The job schedules by name, each with its next tick and its `runs` newest runs."""
        page = self._call("GET", "/schedules", query={"runs": str(runs)})
        return [_read(ScheduleView, s) for s in page["schedules"]]

    def pause_schedule(self, name: str) -> ScheduleView:
        """Its ticks stop firing (EventBridge Scheduler's DISABLED); its running jobs go on."""
        return _read(ScheduleView, self._call("POST", f"/schedules/{_segment(name)}/pause"))

    def resume_schedule(self, name: str) -> ScheduleView:
        """Its next tick fires (the ones it missed while paused do not)."""
        return _read(ScheduleView, self._call("POST", f"/schedules/{_segment(name)}/resume"))

    def run_schedule(self, name: str) -> JobView:
        """The schedule's tick now, with its overlap policy: the job it made."""
        return _read(JobView, self._call("POST", f"/schedules/{_segment(name)}/run"))

    def definitions(self) -> builtins.list[DefinitionView]:
        """The deployment's job definitions, by name: what `submit` takes."""
        return _read(DefinitionList, self._call("GET", "/definitions")).definitions

    def stats(self, hours: int = 24) -> StatsView:
        """The last `hours` in figures: by status over time, per definition, the launch queue."""
        return _read(StatsView, self._call("GET", "/stats", query={"hours": str(hours)}))

    # ---- HTTP ------------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str | None] | None = None,
    ) -> Any:
        """One signed request, its JSON answer as is (the console passes it to the browser)."""
        return self._call(method, path, body=body, query=query)

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        url = self.api_url + path
        pairs = sorted((k, v) for k, v in (query or {}).items() if v is not None)
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        data = b"" if body is None else json.dumps(body).encode()
        base = {"Content-Type": "application/json"} if body is not None else {}
        base.update(headers or {})
        for attempt in range(RETRIES + 1):
            signed = {**base, **self.auth.headers(method, url, data, base)}
            request = urllib.request.Request(
                url, data=data if body is not None else None, method=method, headers=signed
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as err:
                if err.code in RETRY_STATUSES and attempt < RETRIES:
                    self.sleep(min(8.0, 0.5 * 2**attempt) * random.uniform(0.5, 1.0))
                    continue
                raise _api_error(err.code, err.read()) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise ApiError(0, "unreachable", f"cannot reach {self.api_url}: {reason}") from None
        raise AssertionError("unreachable")  # the loop returns or raises


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _api_error(status: int, raw: bytes) -> ApiError:
    """The API's one error shape; API Gateway's own answers ({"message": ...}) too."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return ApiError(status, "http_error", raw.decode("utf-8", "replace")[:500] or "no body")
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return ApiError(
            status,
            str(error.get("code", "error")),
            str(error.get("message", "")),
            error.get("fields"),
        )
    message = payload.get("message") if isinstance(payload, dict) else None
    return ApiError(status, "http_error", str(message or payload))


def _array_spec(job: JobView) -> dict[str, Any] | None:
    """The array a job was submitted as (its tolerance as the count it came to)."""
    if job.array is None:
        return None
    spec: dict[str, Any] = {"size": job.array.size}
    if job.array.sequential:
        spec["sequential"] = True
        spec["sequential_condition"] = job.array.sequential_condition
    elif job.array.max_running is not None:
        spec["max_running"] = job.array.max_running
    if job.array.tolerated_failures:
        spec["tolerated_failures"] = job.array.tolerated_failures
    return spec

"""Job logs in CloudWatch Logs: the stream the awslogs driver wrote for an attempt's task."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jobtracker.adapters.aws import client
from jobtracker.usecases.ports import BadToken, LogEvent, LogPage


class CloudWatchLogs:
    def read(self, group: str, stream: str, limit: int, token: str | None) -> LogPage:
        logs = client("logs")
        request: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "limit": limit,
            "startFromHead": True,  # oldest first, as a reader pages forward through a run
        }
        if token:
            request["nextToken"] = token
        try:
            got = logs.get_log_events(**request)
        except logs.exceptions.ResourceNotFoundException:
            return LogPage([], token, found=False)
        except logs.exceptions.InvalidParameterException as exc:
            if token:
                raise BadToken("next_token is not a token this API handed out") from exc
            raise
        events = [
            LogEvent(datetime.fromtimestamp(e["timestamp"] / 1000, UTC), e["message"])
            for e in got.get("events", [])
        ]
        return LogPage(events, got.get("nextForwardToken") or token)


@lru_cache(maxsize=1)
def default_logs() -> CloudWatchLogs:
    return CloudWatchLogs()

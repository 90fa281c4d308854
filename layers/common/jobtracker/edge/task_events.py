"""ECS "Task State Change" events as on_task_state receives them: parsed into the typed model,
tied to their job and attempt, and applied; a malformed or foreign event is logged, counted and
dropped (returning normally, so it is never retried forever)."""

from __future__ import annotations

from typing import Any

from jobtracker.core.checks import Invalid
from jobtracker.edge.ecs_event import ForeignEvent, correlate, parse_event
from jobtracker.observability import count, logger
from jobtracker.usecases.track import EventResult, apply_state
from jobtracker.wiring import Deps, default_deps


def _cluster_name(value: str) -> str:
    return value.rsplit("/", 1)[-1]


def handle_task_event(raw: dict[str, Any], deps: Deps | None = None) -> EventResult:
    deps = deps or default_deps()
    try:
        correlated = correlate(parse_event(raw))
    except Invalid as exc:
        logger.warning(
            "malformed ECS event dropped",
            extra={
                "event_id": raw.get("id") if isinstance(raw, dict) else None,
                "errors": [{"field": exc.field, "message": exc.message}],
            },
        )
        count("EventsMalformed")
        return EventResult.MALFORMED
    except ForeignEvent as exc:
        logger.info("foreign event dropped", extra={"event_id": raw.get("id"), "why": str(exc)})
        count("EventsForeign")
        return EventResult.FOREIGN
    ours = {_cluster_name(d.cluster) for d in deps.settings.job_definitions.values()}
    if _cluster_name(correlated.cluster_arn) not in ours:
        logger.info("event from another cluster dropped", extra={"event_id": correlated.event_id})
        count("EventsForeign")
        return EventResult.FOREIGN
    result = apply_state(
        correlated.job_id, correlated.attempt, correlated.state, deps, correlated.definition
    )
    count(f"Events{result.value.capitalize()}")
    return result

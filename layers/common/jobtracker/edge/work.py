"""Messages on the retry and launch queues, parsed into a model and dispatched."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobtracker.adapters.records import job_from_message
from jobtracker.observability import count, logger
from jobtracker.usecases.decide import decide_attempt
from jobtracker.usecases.launch import handle_launch_message
from jobtracker.wiring import Deps


class WorkMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal["decide", "launch"]
    job_id: Annotated[str, Field(min_length=1, max_length=128)]
    attempt: Annotated[int, Field(ge=1, le=1000)]
    # A decide hand-off carries the job's record as the handing write left it: the decider
    # plans from it without a read (its guard catches anything that changed since).
    job: dict[str, Any] | None = None


def handle_work_message(body: str, deps: Deps | None = None) -> str:
    """Returns what was done. Raises only for failures worth a redelivery."""
    try:
        message = WorkMessage.model_validate_json(body)
    except ValidationError as exc:
        logger.warning("malformed work message dropped", extra={"errors": str(exc)[:500]})
        count("WorkMessagesMalformed")
        return "malformed"
    if message.kind == "decide":
        snapshot = job_from_message(message.job) if message.job else None
        if snapshot is not None and snapshot.job_id != message.job_id:
            snapshot = None
        return decide_attempt(message.job_id, message.attempt, deps, snapshot).action
    return handle_launch_message(message.job_id, message.attempt, deps)

"""Logger and metrics shared by every function. Tracing (X-Ray SDK, 120-170 ms of cold start)
is only loaded when JOBTRACKER_TRACING=true."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

NAMESPACE = "jobtracker"

# Powertools reads POWERTOOLS_SERVICE_NAME / POWERTOOLS_LOG_LEVEL itself when logging.
logger = Logger(service="jobtracker")
metrics = Metrics(namespace=NAMESPACE)


def count(name: str, value: float = 1) -> None:
    # Disabled metrics are still kept by Powertools (its flush skips, so nothing clears them) and
    # printed at 100 values each: with metrics off (the local stack, benchmarks), add nothing.
    if is_metrics_disabled():
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


@lru_cache(maxsize=1)
def tracer() -> Any:
    if os.environ.get("JOBTRACKER_TRACING", "false").lower() != "true":
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()

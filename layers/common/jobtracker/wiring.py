"""The collaborators every use case takes (repository, launcher, queue, settings, clock) and
their real defaults, built lazily and cached. Unit tests pass fakes; integration tests moto."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from jobtracker.adapters.launcher import TaskLauncher
from jobtracker.adapters.queue import WorkQueue
from jobtracker.clock import Clock, system_clock
from jobtracker.config import Settings, get_settings
from jobtracker.usecases.ports import (
    ArrayCounterStore,
    JobRepository,
    LaunchGovernor,
    LogReader,
    MemoryArrayCounters,
    MemoryRunningLimits,
    RunningLimits,
    ScheduleSource,
    Unlimited,
)


def _cloudwatch_logs() -> LogReader:
    # A small module; its CloudWatch Logs client is made on the first read, not here.
    from jobtracker.adapters.logs import default_logs

    return default_logs()


def _scheduler() -> ScheduleSource:
    # Its EventBridge Scheduler client is made on the first read too.
    from jobtracker.adapters.schedules import default_schedules

    return default_schedules()


@dataclass
class Deps:
    repo: JobRepository
    launcher: TaskLauncher
    queue: WorkQueue
    settings: Settings
    clock: Clock = system_clock
    rand: Callable[[], float] | None = None
    governor: LaunchGovernor = field(default_factory=Unlimited)
    logs: LogReader = field(default_factory=_cloudwatch_logs)
    schedules: ScheduleSource = field(default_factory=_scheduler)
    limits: RunningLimits = field(default_factory=MemoryRunningLimits)
    arrays: ArrayCounterStore = field(default_factory=MemoryArrayCounters)


@lru_cache(maxsize=1)
def default_deps() -> Deps:
    from jobtracker.adapters.arrays import DynamoArrayCounters
    from jobtracker.adapters.governor import DynamoGovernor
    from jobtracker.adapters.launcher import default_launcher
    from jobtracker.adapters.limits import DynamoRunningLimits
    from jobtracker.adapters.queue import default_queue
    from jobtracker.adapters.store import default_repository

    settings = get_settings()
    return Deps(
        repo=default_repository(),
        launcher=default_launcher(),
        queue=default_queue(),
        settings=settings,
        governor=DynamoGovernor(settings.table_name, settings.launch_rate, settings.launch_burst),
        limits=DynamoRunningLimits(settings.table_name),
        arrays=DynamoArrayCounters(settings.table_name),
    )


def reset_defaults() -> None:
    """Forget every cached default (settings, clients, repository, launcher, queue, publisher),
    e.g. after the environment changed: tests, the local stack."""
    from jobtracker.adapters.aws import reset_clients
    from jobtracker.adapters.launcher import default_launcher
    from jobtracker.adapters.logs import default_logs
    from jobtracker.adapters.models import reset_models
    from jobtracker.adapters.notify import default_publisher
    from jobtracker.adapters.queue import default_queue
    from jobtracker.adapters.schedules import default_schedules
    from jobtracker.adapters.store import default_repository
    from jobtracker.config import reset_settings

    reset_settings()
    reset_clients()
    reset_models()
    default_deps.cache_clear()
    for cached in (
        default_repository,
        default_launcher,
        default_queue,
        default_publisher,
        default_logs,
        default_schedules,
    ):
        cached.cache_clear()

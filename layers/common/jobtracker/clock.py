"""The clock the logic reads: a parameter, so tests can move time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jobtracker.core.domain import utcnow

Clock = Callable[[], datetime]

system_clock: Clock = utcnow

"""Integration: the reconciler reaches every due job in one run, however many are active
(RECONCILE_JOBS, default 1,000 in CI; 10,000 on demand), on the real store (moto)."""

from __future__ import annotations

import os
import time

from jobtracker.core.domain import JobStatus
from jobtracker.core.submission import Submission
from jobtracker.usecases.reconcile import reconcile
from jobtracker.usecases.submit import build_job
from jobtracker.wiring import Deps, default_deps
from tests.conftest import AwsEnv
from tests.fakes import FakeClock, FakeLauncher, FakeQueue

JOBS = int(os.environ.get("RECONCILE_JOBS", "1000"))


def test_one_run_reaches_every_due_job(aws: AwsEnv) -> None:
    # GIVEN many jobs whose create_job died before RunTask (all due for a launch)
    real = default_deps()
    clock = FakeClock()
    deps = Deps(real.repo, FakeLauncher(), FakeQueue(), real.settings, clock)
    submission = Submission(definition="demo")
    for _ in range(JOBS):
        real.repo.create(build_job(submission, deps.settings, clock(), "me"))
    clock.advance(deps.settings.decision_grace_seconds + 1)
    # WHEN the reconciler runs once
    started = time.perf_counter()
    report = reconcile(deps)
    elapsed = time.perf_counter() - started
    print(
        f"\nreconciler: {report.seen} active jobs, {report.actions['launch']} launched in {elapsed:.1f} s"
    )
    # THEN every one of them was reached and launched, with no error
    assert report.seen == JOBS and report.actions["launch"] == JOBS and report.errors == 0
    sample = real.repo.list_jobs("STARTING", None, None, 100, None)[0]
    assert len(sample) == 100 and all(j.status == JobStatus.STARTING for j in sample)

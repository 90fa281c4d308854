"""Integration: what a job costs in DynamoDB write units, measured by bench/ddb_meter.py (the
meter itself is checked against hand-computed figures first)."""

from __future__ import annotations

from typing import Any

from bench import meter_selftest
from bench.ddb_meter import DdbMeter
from tests.conftest import AwsEnv
from tests.helpers import invoke, job_event, submitted


def test_the_meter_charges_by_dynamodb_rules() -> None:
    # sizes, puts, updates, index key moves, sparse entries, failed conditions, transactions
    assert meter_selftest.main() == 0, meter_selftest.FAILURES


def run_success(aws: AwsEnv) -> Any:
    with DdbMeter() as meter:
        job = submitted()
        for fixture in ("task_running", "task_stopped_success"):  # what the event rule delivers
            invoke("functions/on_task_state", job_event(job, fixture, aws.cluster_arn))
        return meter.snapshot()


def test_a_successful_default_job_costs_at_most_10_write_units(aws: AwsEnv) -> None:
    # GIVEN a job submitted with defaults WHEN it runs to success
    snapshot = run_success(aws)
    # THEN the table and every index together were charged at most 10 WRU
    table = snapshot.tables[aws.table]
    per_index = {name: index.wru for name, index in table.indexes.items()}
    assert snapshot.wru <= 10, (snapshot.wru, table.wru, per_index)
    # AND every write of the job item was of a single KB
    assert table.max_item_size < 1024, table.max_item_size

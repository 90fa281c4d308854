"""Unit: the metrics helper."""

from __future__ import annotations

import pytest

from jobtracker.observability import count, metrics


def test_disabled_metrics_are_neither_kept_nor_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics switched off, as the local stack and the benchmarks do
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.clear_metrics()
    # When more counts are added than Powertools keeps before it prints a batch
    for _ in range(150):
        count("EventsApplied")
    # Then nothing piles up and nothing reaches stdout
    assert metrics.metric_set == {}
    assert capsys.readouterr().out == ""


def test_enabled_metrics_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()
    count("EventsApplied", 2)
    assert metrics.metric_set["EventsApplied"]["Value"] == [2.0]
    metrics.clear_metrics()

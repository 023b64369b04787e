"""The coordinator's Prometheus metrics, read from its stats at scrape time."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from tests.memory_support import MemoryCluster
from zkq.coordinator.metrics import CoordinatorCollector
from zkq.coordinator.stats import DispatchStats


def test_quarantined_records_are_counted() -> None:
    cluster = MemoryCluster()
    try:
        stats = DispatchStats()
        registry = CollectorRegistry()
        registry.register(CoordinatorCollector(stats, cluster.session("c")))
        assert registry.get_sample_value("zkq_archive_quarantined_total") == 0
        stats.quarantined += 3  # what the leader's pruner does per refused record
        assert registry.get_sample_value("zkq_archive_quarantined_total") == 3
    finally:
        cluster.close()

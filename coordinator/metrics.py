"""Prometheus metrics of a coordinator, read at scrape time from its
:class:`~zkq.coordinator.stats.DispatchStats` (one registry per service, so tests may run
several in one process).

- ``zkq_coordinator_leader``: 1 on the leader, 0 on a standby
- ``zkq_zookeeper_connected``: 1 while the session is connected
- ``zkq_queue_depth{type}``, ``zkq_queue_oldest_age_seconds{type}``,
  ``zkq_queue_running{type}``, ``zkq_queue_paused{type}``, ``zkq_type_capped{type}``
  (pending jobs held back by a type limit or the reserve rule): as the leader holds them
- ``zkq_workers``, ``zkq_free_slots``
- ``zkq_assignments_total``, ``zkq_assignment_transactions_total``,
  ``zkq_requeues_total{reason="lost"|"timeout"}``
- ``zkq_promoted_total``: scheduled jobs the leader promoted to pending;
  ``zkq_promotion_lag_seconds`` (summary: count, sum) and ``zkq_promotion_lag_max_seconds``,
  the leader's clock minus ``run_at`` at promotion; ``zkq_due_backlog``: due scheduled jobs
  held and not yet promoted
- ``zkq_archive_quarantined_total``: finished jobs the archive refused, kept in
  ``job_quarantine`` instead (counted by the leader that pruned them)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.zk import ZkSession


class CoordinatorCollector(Collector):
    def __init__(self, stats: DispatchStats, session: ZkSession) -> None:
        self.stats = stats
        self.session = session

    def collect(self) -> Iterator[Any]:
        stats = self.stats
        queues = stats.queues  # one read: the dispatcher swaps the dict, never mutates it
        now = time.time()
        yield GaugeMetricFamily(
            "zkq_coordinator_leader", "1 if this coordinator leads", value=int(stats.leading)
        )
        yield GaugeMetricFamily(
            "zkq_zookeeper_connected",
            "1 while the ZooKeeper session is connected",
            value=int(self.session.connected.is_set()),
        )
        depth = GaugeMetricFamily("zkq_queue_depth", "Pending jobs", labels=["type"])
        oldest = GaugeMetricFamily(
            "zkq_queue_oldest_age_seconds", "Age of the oldest pending job", labels=["type"]
        )
        running = GaugeMetricFamily(
            "zkq_queue_running", "Jobs assigned or running", labels=["type"]
        )
        paused = GaugeMetricFamily("zkq_queue_paused", "1 if the type is paused", labels=["type"])
        for job_type, q in sorted(queues.items()):
            depth.add_metric([job_type], q.depth)
            oldest.add_metric(
                [job_type], 0.0 if q.oldest_created is None else max(0.0, now - q.oldest_created)
            )
            running.add_metric([job_type], q.running)
            paused.add_metric([job_type], int(q.paused))
        capped = GaugeMetricFamily(
            "zkq_type_capped",
            "Pending jobs held back only by a type limit or the reserve rule",
            labels=["type"],
        )
        for job_type, count in sorted(stats.capped.items()):
            capped.add_metric([job_type], count)
        yield from (depth, oldest, running, paused, capped)
        yield GaugeMetricFamily("zkq_workers", "Live workers (leader's view)", value=stats.workers)
        yield GaugeMetricFamily(
            "zkq_free_slots", "Free worker slots (leader's view)", value=stats.free_slots
        )
        yield CounterMetricFamily(
            "zkq_assignments", "Jobs assigned to workers", value=stats.assigned
        )
        yield CounterMetricFamily(
            "zkq_assignment_transactions", "Assignment multis committed", value=stats.transactions
        )
        requeues = CounterMetricFamily(
            "zkq_requeues", "Jobs taken back from workers", labels=["reason"]
        )
        requeues.add_metric(["lost"], stats.requeued - stats.timeouts)
        requeues.add_metric(["timeout"], stats.timeouts)
        yield requeues
        yield GaugeMetricFamily(
            "zkq_unreadable_pending",
            "Pending jobs whose record this leader cannot read (a newer schema), left alone",
            value=stats.unreadable,
        )
        ticks = CounterMetricFamily(
            "zkq_schedule_ticks", "Periodic schedule ticks decided", labels=["outcome"]
        )
        for outcome, count in sorted(dict(stats.schedule_ticks).items()):
            ticks.add_metric([outcome], count)
        yield ticks
        yield GaugeMetricFamily(
            "zkq_schedules", "Periodic schedules (leader's view)", value=stats.schedules
        )
        yield CounterMetricFamily(
            "zkq_swept_jobs",
            "Jobs the leader's sweep found stranded (nothing would have moved them) and moved",
            value=stats.swept,
        )
        yield CounterMetricFamily(
            "zkq_promoted", "Scheduled jobs promoted to pending", value=stats.promoted
        )
        yield SummaryMetricFamily(
            "zkq_promotion_lag_seconds",
            "The leader's clock minus run_at when a scheduled job was promoted",
            count_value=stats.promoted,
            sum_value=stats.promotion_lag_sum,
        )
        yield GaugeMetricFamily(
            "zkq_promotion_lag_max_seconds",
            "Worst promotion lag seen by this leader",
            value=stats.promotion_lag_max,
        )
        yield GaugeMetricFamily(
            "zkq_due_backlog",
            "Scheduled jobs due and not yet promoted (leader's view)",
            value=stats.due_backlog,
        )
        yield CounterMetricFamily(
            "zkq_archive_quarantined",
            "Finished jobs the archive refused and the pruner quarantined",
            value=stats.quarantined,
        )


def serve(registry: CollectorRegistry, port: int, addr: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` from a daemon thread."""
    start_http_server(port, addr=addr, registry=registry)

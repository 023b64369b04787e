"""What the coordinator knows about its own work, for ``/metrics`` and benchmarks.

The dispatcher's thread is the only writer.  It replaces :attr:`DispatchStats.queues` with a
new dict (never mutates the published one), so a scrape on another thread reads a
consistent snapshot without a lock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class QueueSnapshot:
    depth: int
    oldest_created: float | None  # creation time of the oldest pending job
    running: int  # assigned or running, as the leader tracks them
    paused: bool


@dataclass
class DispatchStats:
    assigned: int = 0
    requeued: int = 0
    timeouts: int = 0
    #: assignment multis committed (a batch is one)
    transactions: int = 0
    leading: bool = False
    #: finished jobs the archive refused and the pruner quarantined (coordinator.archive)
    quarantined: int = 0
    workers: int = 0
    free_slots: int = 0
    #: pending entries left alone because their record cannot be read here (a newer schema)
    unreadable: int = 0
    #: jobs the leader's sweep found that nothing would have moved, and moved
    swept: int = 0
    #: scheduled jobs promoted to pending; the sum and worst of their lateness at promotion
    #: (the leader's clock minus run_at), and the due entries it holds not yet promoted
    promoted: int = 0
    promotion_lag_sum: float = 0.0
    promotion_lag_max: float = 0.0
    due_backlog: int = 0
    queues: dict[str, QueueSnapshot] = field(default_factory=dict)
    #: pending jobs per type that wait only because of a type limit or the reserve rule
    capped: dict[str, int] = field(default_factory=dict)
    #: schedule ticks decided, by outcome (the ticker's own counter, shared)
    schedule_ticks: Counter[str] = field(default_factory=Counter)
    #: periodic schedules the leader's ticker holds
    schedules: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

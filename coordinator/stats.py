"""Counters the coordinator keeps about its own work (exposed by ``zkq`` and benchmarks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class DispatchStats:
    assigned: int = 0
    requeued: int = 0
    timeouts: int = 0
    #: assignment multis committed (a batch is one)
    transactions: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

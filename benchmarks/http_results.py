"""The HTTP bench's measurements, as plain data: what :mod:`benchmarks.http_report` judges
and prints.  Latencies are kept as percentiles only (the raw lists stay in the runner)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError("a percentile is between 0 and 100")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Latencies:
    """Milliseconds (None when nothing was measured)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {k: _round(v) for k, v in asdict(self).items()}

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Latencies:
        return cls(
            percentile(values_ms, 50),
            percentile(values_ms, 90),
            percentile(values_ms, 99),
            max(values_ms) if values_ms else None,
        )


@dataclass
class ThroughputRow:
    """A closed loop: ``connections`` clients submitting back to back for ``seconds``."""

    name: str  # "HTTP, auth on", "HTTP, auth off", "direct (coordinator.Client)"
    path: str  # what a submission went through
    connections: int
    seconds: float
    ok: int
    errors: dict[str, int]
    latency: Latencies
    #: jobs pending, assigned or running when the loop ended (None: not read), and the
    #: seconds the workers then took to bring it to zero (None: not within the cap)
    backlog_end: int | None = None
    drain_seconds: float | None = None

    @property
    def per_s(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "latency": self.latency.to_dict(),
            "drain_seconds": _round(self.drain_seconds),
            "per_s": round(self.per_s, 1),
        }


@dataclass
class LatencyRow:
    """An open loop paced at ``target_rate`` (half the auth-on peak)."""

    peak: float  # the auth-on jobs/s it is half of
    target_rate: float
    seconds: float
    connections: int
    ok: int
    errors: dict[str, int]
    latency: Latencies  # from each submission's due time

    @property
    def achieved_rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "peak": round(self.peak, 1),
            "target_rate": round(self.target_rate, 1),
            "latency": self.latency.to_dict(),
            "achieved_rate": round(self.achieved_rate, 1),
        }


#: when gunicorn memory is read
IDLE, AFTER_LONG_RUN, AFTER_LOAD = "idle", "after_long_run", "after_load"


@dataclass
class ProcessMemory:
    """One gunicorn process: the master, or one of its (gevent) workers."""

    role: str  # "master" or "worker"
    pid: int
    rss: dict[str, int | None] = field(default_factory=dict)  # moment (IDLE...) -> bytes


@dataclass
class FrontendMemory:
    name: str
    processes: list[ProcessMemory] = field(default_factory=list)


@dataclass
class SizeSample:
    """One reading during the long run (``t``: seconds since its load began)."""

    t: float
    data_bytes: int  # mntr zk_approximate_data_size
    znodes: int  # mntr zk_znode_count
    submitted: int  # accepted by the frontends so far
    backlog: int | None  # pending + in inboxes (assigned or running)
    archived: int | None  # rows of job_archive

    @property
    def processed(self) -> int | None:
        return None if self.backlog is None else max(0, self.submitted - self.backlog)


@dataclass
class RetentionRun:
    """A steady load for ``seconds`` with coordinators pruning after ``retention`` s."""

    retention: float
    prune_interval: float
    rate: float
    seconds: float
    connections: int
    ok: int
    errors: dict[str, int]
    samples: list[SizeSample] = field(default_factory=list)
    archived_before: int | None = None
    archived_after: int | None = None

    @property
    def warmup(self) -> float:
        """Samples before this are the filling of the first window: jobs reach the archive
        only ``retention`` after they end, plus up to one pruning round."""
        return 2 * self.retention + self.prune_interval

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "warmup": self.warmup,
            "samples": [{**asdict(s), "processed": s.processed} for s in self.samples],
        }


@dataclass
class HttpBenchResults:
    meta: dict[str, Any]
    throughput: list[ThroughputRow] = field(default_factory=list)
    latency: LatencyRow | None = None
    memory: list[FrontendMemory] = field(default_factory=list)
    retention: RetentionRun | None = None

    def row(self, name: str) -> ThroughputRow | None:
        return next((r for r in self.throughput if r.name == name), None)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)

"""The measured rows, as plain data: what :mod:`benchmarks.report` judges and prints.

Every count that comes from the ensemble (transactions, notifications) is kept raw, next to
the idle rate measured just before the window, so a reader of the JSON can redo the
correction: ``corrected = max(0, raw - idle_rate * seconds)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def per_second(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def idle_corrected(raw: float | None, idle_rate: float, seconds: float) -> float | None:
    """``raw`` minus what the same window would have counted idle (never below zero)."""
    if raw is None:
        return None
    return max(0.0, raw - idle_rate * seconds)


def per_job(count: float | None, jobs: int) -> float | None:
    if count is None or jobs <= 0:
        return None
    return count / jobs


@dataclass
class Idle:
    """Background rates over an idle window just before a measured one."""

    seconds: float
    transactions_per_s: float
    notifications_per_s: float


@dataclass
class RawRow:
    """Raw kazoo creates of small persistent znodes."""

    mode: str  # "pipelined" or "sequential"
    ops: int
    seconds: float
    window: int  # requests in flight at once (1 when sequential)
    transactions: int | None  # zxid delta over the run: calibrates the zxid method
    zookeeper_cpu: float | None = None  # CPU seconds of the three JVMs over the run

    @property
    def ops_per_s(self) -> float:
        return per_second(self.ops, self.seconds)

    @property
    def zookeeper_cpu_ms_per_op(self) -> float | None:
        if self.zookeeper_cpu is None or self.ops <= 0:
            return None
        return 1000.0 * self.zookeeper_cpu / self.ops

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ops_per_s": round(self.ops_per_s, 1),
            "zookeeper_cpu_ms_per_op": _round(self.zookeeper_cpu_ms_per_op),
        }


@dataclass
class Memory:
    """Resident set sizes in bytes (None when the process could not be read)."""

    leader_idle: int | None = None
    leader_after: int | None = None
    worker_idle_mean: int | None = None
    worker_after_mean: int | None = None
    worker_after_max: int | None = None


@dataclass
class ZkqRow:
    """One zkq run: ``workers`` processes with ``slots_per_worker`` slots each."""

    workers: int
    slots_per_worker: int
    jobs: int
    succeeded: int
    seconds: float  # first submission until every record is succeeded (or the deadline)
    complete: bool
    transactions: int | None  # raw zxid delta over the window
    notifications: int  # raw, summed over the ensemble
    #: client requests the ensemble served in the window (reads, writes, pings), less the
    #: bench's own completion polls; not idle-corrected (idle is pings only)
    requests: int
    idle: Idle
    memory: Memory = field(default_factory=Memory)
    #: CPU seconds used over the window, by process role (zookeeper, leader, workers, bench)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def slots(self) -> int:
        return self.workers * self.slots_per_worker

    @property
    def shape(self) -> str:
        return f"{self.workers}x{self.slots_per_worker}"

    @property
    def jobs_per_s(self) -> float:
        return per_second(self.succeeded, self.seconds)

    @property
    def transactions_per_job(self) -> float | None:
        count = idle_corrected(self.transactions, self.idle.transactions_per_s, self.seconds)
        return per_job(count, self.succeeded)

    @property
    def notifications_per_job(self) -> float | None:
        count = idle_corrected(self.notifications, self.idle.notifications_per_s, self.seconds)
        return per_job(count, self.succeeded)

    @property
    def requests_per_job(self) -> float | None:
        return per_job(self.requests, self.succeeded)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "slots": self.slots,
            "shape": self.shape,
            "jobs_per_s": round(self.jobs_per_s, 1),
            "transactions_per_job": _round(self.transactions_per_job),
            "notifications_per_job": _round(self.notifications_per_job),
            "requests_per_job": _round(self.requests_per_job),
        }


@dataclass
class LqRow:
    """One LockingQueue run: ``processes`` x ``threads_per_process`` consumers, each with its
    own KazooClient (its own session)."""

    processes: int
    threads_per_process: int
    jobs: int  # put
    completed: int  # consumed before the time cap
    seconds: float
    capped: bool  # the time cap ended the run before every job was consumed
    transactions: int | None
    notifications: int
    #: as for ZkqRow; includes the consumers' periodic re-listing when get() times out
    requests: int
    idle: Idle
    #: CPU seconds used over the window, by process role (zookeeper, consumers, bench)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def consumers(self) -> int:
        return self.processes * self.threads_per_process

    @property
    def jobs_per_s(self) -> float:
        return per_second(self.completed, self.seconds)

    @property
    def transactions_per_job(self) -> float | None:
        count = idle_corrected(self.transactions, self.idle.transactions_per_s, self.seconds)
        return per_job(count, self.completed)

    @property
    def notifications_per_job(self) -> float | None:
        count = idle_corrected(self.notifications, self.idle.notifications_per_s, self.seconds)
        return per_job(count, self.completed)

    @property
    def requests_per_job(self) -> float | None:
        return per_job(self.requests, self.completed)

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "consumers": self.consumers,
            "jobs_per_s": round(self.jobs_per_s, 1),
            "transactions_per_job": _round(self.transactions_per_job),
            "notifications_per_job": _round(self.notifications_per_job),
            "requests_per_job": _round(self.requests_per_job),
        }


@dataclass
class BenchResults:
    meta: dict[str, Any]
    raw: list[RawRow] = field(default_factory=list)
    zkq: list[ZkqRow] = field(default_factory=list)
    lq: list[LqRow] = field(default_factory=list)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)

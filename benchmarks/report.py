"""Judging and printing the results: ratios, targets (PASS/MISS), text tables and JSON.

Pure functions of :class:`~benchmarks.results.BenchResults`; nothing here does I/O, so the
rules are unit-tested without a cluster.

The targets (DESIGN.md, "Who watches what"):

- watch notifications per zkq job do not grow with the number of workers: every row's
  figure is at most :data:`FLAT_TOLERANCE` times the one-worker figure (rows with the same
  slots per worker, so only the worker count changes);
- zkq throughput does not fall as slots are added: every row reaches at least
  :data:`THROUGHPUT_TOLERANCE` of the best row before it (the tolerance absorbs the noise
  of a shared machine, not a trend);
- zkq is at least :data:`RATIO_TARGET` times as fast as LockingQueue at
  :data:`RATIO_AT` consumers (or the largest count both ran below it, in a quick run);
- at most :data:`TRANSACTIONS_TARGET` ZooKeeper transactions per job in every zkq row;
- every zkq job succeeded (a sanity check: a fast wrong answer is no answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.results import BenchResults, LqRow, ZkqRow

FLAT_TOLERANCE = 1.25
THROUGHPUT_TOLERANCE = 0.9
RATIO_TARGET = 5.0
RATIO_AT = 16
TRANSACTIONS_TARGET = 4.0
PASS, MISS, NA = "PASS", "MISS", "n/a"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Ratio:
    consumers: int  # zkq slots = LockingQueue consumers
    zkq_jobs_per_s: float
    lq_jobs_per_s: float

    @property
    def ratio(self) -> float | None:
        return ratio(self.zkq_jobs_per_s, self.lq_jobs_per_s)


@dataclass(frozen=True)
class Verdict:
    name: str
    target: str
    measured: str
    verdict: str  # PASS, MISS or n/a


def ratio(a: float, b: float) -> float | None:
    """a / b, or None when b is zero (nothing to compare against)."""
    return a / b if b > 0 else None


def ratios(zkq: Sequence[ZkqRow], lq: Sequence[LqRow]) -> list[Ratio]:
    """zkq with N slots against LockingQueue with N consumers, for every N both ran."""
    by_consumers = {row.consumers: row for row in lq}
    return [
        Ratio(row.slots, row.jobs_per_s, by_consumers[row.slots].jobs_per_s)
        for row in sorted(zkq, key=lambda r: r.slots)
        if row.slots in by_consumers
    ]


def notification_rows(zkq: Sequence[ZkqRow]) -> list[ZkqRow]:
    """The rows that differ only in the number of workers: those with as many slots per
    worker as the row with the most workers, by worker count."""
    if not zkq:
        return []
    widest = max(zkq, key=lambda r: (r.workers, r.slots))
    rows = [r for r in zkq if r.slots_per_worker == widest.slots_per_worker]
    return sorted(rows, key=lambda r: r.workers)


# -- targets ------------------------------------------------------------------------------
def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def flat_notifications(zkq: Sequence[ZkqRow], tolerance: float = FLAT_TOLERANCE) -> Verdict:
    rows = [r for r in notification_rows(zkq) if r.notifications_per_job is not None]
    target = f"notifications/job flat in workers (each <= {tolerance:g}x the fewest-worker row)"
    name = "watch notifications per job vs workers"
    if len(rows) < 2:
        return Verdict(name, target, "fewer than two worker counts measured", NA)
    base = rows[0].notifications_per_job or 0.0
    measured = ", ".join(f"{r.workers}w: {_fmt(r.notifications_per_job)}" for r in rows)
    ok = all((r.notifications_per_job or 0.0) <= tolerance * base for r in rows[1:])
    return Verdict(name, target, measured, PASS if ok else MISS)


def throughput_holds(zkq: Sequence[ZkqRow], tolerance: float = THROUGHPUT_TOLERANCE) -> Verdict:
    rows = sorted(zkq, key=lambda r: r.slots)
    name = "zkq throughput as slots are added"
    target = f"each row >= {tolerance:g}x the best row with fewer slots"
    if len(rows) < 2:
        return Verdict(name, target, "fewer than two rows measured", NA)
    measured = ", ".join(f"{r.slots}: {r.jobs_per_s:.0f}" for r in rows)
    ok = all(
        rows[i].jobs_per_s >= tolerance * max(r.jobs_per_s for r in rows[:i])
        for i in range(1, len(rows))
    )
    return Verdict(name, target, measured + " jobs/s", PASS if ok else MISS)


def beats_lockingqueue(
    zkq: Sequence[ZkqRow],
    lq: Sequence[LqRow],
    at: int = RATIO_AT,
    target_ratio: float = RATIO_TARGET,
) -> Verdict:
    pairs = [p for p in ratios(zkq, lq) if p.consumers <= at]
    name = "zkq vs LockingQueue"
    if not pairs:
        return Verdict(name, f">= {target_ratio:g}x at {at}", "no common consumer count", NA)
    pair = max(pairs, key=lambda p: p.consumers)
    value = pair.ratio
    target = f">= {target_ratio:g}x at {pair.consumers} consumers"
    if pair.consumers != at:
        target += f" ({at} not measured)"
    measured = (
        f"{_fmt(value, 1)}x ({pair.zkq_jobs_per_s:.0f} vs {pair.lq_jobs_per_s:.0f} jobs/s)"
        if value is not None
        else "LockingQueue consumed nothing"
    )
    ok = value is None or value >= target_ratio  # LockingQueue at zero: zkq wins outright
    return Verdict(name, target, measured, PASS if ok else MISS)


def few_transactions(zkq: Sequence[ZkqRow], limit: float = TRANSACTIONS_TARGET) -> Verdict:
    name = "ZooKeeper transactions per job"
    target = f"<= {limit:g} in every row"
    values = [(r, r.transactions_per_job) for r in sorted(zkq, key=lambda r: r.slots)]
    if not values:
        return Verdict(name, target, "no zkq rows", NA)
    if any(v is None for _, v in values):
        return Verdict(name, target, "the ZooKeeper leader changed during a row", NA)
    measured = ", ".join(f"{r.shape}: {_fmt(v)}" for r, v in values)
    ok = all(v is not None and v <= limit for _, v in values)
    return Verdict(name, target, measured, PASS if ok else MISS)


def all_succeeded(zkq: Sequence[ZkqRow]) -> Verdict:
    done = sum(r.succeeded for r in zkq)
    total = sum(r.jobs for r in zkq)
    ok = bool(zkq) and all(r.complete and r.succeeded == r.jobs for r in zkq)
    return Verdict(
        "every zkq job succeeded", "all", f"{done}/{total}", PASS if ok else (MISS if zkq else NA)
    )


def verdicts(results: BenchResults) -> list[Verdict]:
    return [
        flat_notifications(results.zkq),
        throughput_holds(results.zkq),
        beats_lockingqueue(results.zkq, results.lq),
        few_transactions(results.zkq),
        all_succeeded(results.zkq),
    ]


def passed(results: BenchResults) -> bool:
    return all(v.verdict != MISS for v in verdicts(results))


# -- JSON ---------------------------------------------------------------------------------
def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


def to_json(results: BenchResults) -> dict[str, Any]:
    """Every section, for machines: the raw rows plus what the text report derives."""
    return {
        "meta": results.meta,
        "zk_raw": [row.to_dict() for row in results.raw],
        "zkq_throughput": [row.to_dict() for row in results.zkq],
        "lockingqueue": [row.to_dict() for row in results.lq],
        "ratios": [
            {
                "consumers": p.consumers,
                "zkq_jobs_per_s": round(p.zkq_jobs_per_s, 1),
                "lockingqueue_jobs_per_s": round(p.lq_jobs_per_s, 1),
                "ratio": None if p.ratio is None else round(p.ratio, 2),
            }
            for p in ratios(results.zkq, results.lq)
        ],
        "transactions": {
            "zkq": [
                {
                    "shape": r.shape,
                    "per_job": _round(r.transactions_per_job),
                    "requests_per_job": _round(r.requests_per_job),
                }
                for r in results.zkq
            ],
            "lockingqueue": [
                {
                    "consumers": r.consumers,
                    "per_job": _round(r.transactions_per_job),
                    "requests_per_job": _round(r.requests_per_job),
                }
                for r in results.lq
            ],
            "calibration": [{"creates": r.ops, "zxid_delta": r.transactions} for r in results.raw],
        },
        "notifications": {
            "zkq": [
                {
                    "workers": r.workers,
                    "slots_per_worker": r.slots_per_worker,
                    "per_job": _round(r.notifications_per_job),
                }
                for r in notification_rows(results.zkq)
            ],
            "lockingqueue": [
                {"consumers": r.consumers, "per_job": _round(r.notifications_per_job)}
                for r in results.lq
            ],
        },
        "memory": [
            {
                "shape": r.shape,
                "leader_idle_mib": _mib(r.memory.leader_idle),
                "leader_after_mib": _mib(r.memory.leader_after),
                "worker_idle_mib": _mib(r.memory.worker_idle_mean),
                "worker_after_mib": _mib(r.memory.worker_after_mean),
                "worker_after_max_mib": _mib(r.memory.worker_after_max),
            }
            for r in results.zkq
        ],
        "cpu": [
            {
                "row": name,
                "ms_per_job": cpu_per_job(row.cpu, done),
                "busy_share": _round(busy_share(row.cpu, row.seconds, results.meta.get("cpus"))),
            }
            for name, row, done in _cpu_rows(results)
        ],
        "summary": [
            {"name": v.name, "target": v.target, "measured": v.measured, "verdict": v.verdict}
            for v in verdicts(results)
        ],
    }


def cpu_per_job(cpu: dict[str, float], jobs: int) -> dict[str, float | None]:
    """CPU milliseconds per job by role."""
    return {role: per_job_ms(seconds, jobs) for role, seconds in cpu.items()}


def per_job_ms(seconds: float, jobs: int) -> float | None:
    return None if jobs <= 0 else round(1000.0 * seconds / jobs, 2)


def busy_share(cpu: dict[str, float], seconds: float, cpus: int | None) -> float | None:
    """The share of the machine's CPU time the measured processes used over the window."""
    if not cpus or seconds <= 0:
        return None
    return sum(cpu.values()) / (seconds * cpus)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- text ---------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: text columns left-aligned, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(r[i]) for r in rows if r[i] is not None) and bool(rows)
        for i in range(len(headers))
    ]
    lines = []
    for n, row in enumerate(cells):
        line = "  ".join(
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        )
        lines.append("  " + line.rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(out: list[str], verdicts: Sequence[Verdict], notes: Sequence[str]) -> None:
    """The closing part of every bench report: the verdicts, then the notes."""
    out += ["", "Summary"]
    out.append(
        table(
            ["target", "wanted", "measured", "verdict"],
            [[v.name, v.target, v.measured, v.verdict] for v in verdicts],
        )
    )
    if notes:
        out += ["", "Notes"]
        out.extend(f"  - {note}" for note in notes)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) or (
        isinstance(value, str) and value.replace(".", "", 1).rstrip("x").isdigit()
    )


def render(results: BenchResults) -> str:
    meta = results.meta
    out: list[str] = []
    add = out.append
    add(f"zkq bench{' (quick)' if meta.get('quick') else ''}: {meta.get('when', '')}")
    add(
        f"  ensemble: {meta.get('zk_nodes')} ZooKeeper nodes, tick {meta.get('tick_ms')} ms, "
        f"{meta.get('coordinators')} coordinators; {meta.get('cpus')} CPUs, load average "
        f"{meta.get('load_before')} before, {meta.get('load_after')} after"
    )
    add("")
    add("1. Raw ZooKeeper creates (kazoo, one client, 16-byte persistent znodes): the ceiling")
    add(
        table(
            ["mode", "in flight", "creates", "seconds", "ops/s", "ZK CPU ms/op"],
            [
                [
                    r.mode,
                    r.window,
                    r.ops,
                    f"{r.seconds:.2f}",
                    f"{r.ops_per_s:.0f}",
                    _fmt(r.zookeeper_cpu_ms_per_op),
                ]
                for r in results.raw
            ],
        )
    )
    add("")
    add("2. zkq end to end: noop jobs, first submission until every record is succeeded")
    add(
        table(
            ["slots", "workers x slots", "worker procs", "jobs", "succeeded", "seconds", "jobs/s"],
            [
                [
                    r.slots,
                    r.shape,
                    r.workers,
                    r.jobs,
                    r.succeeded,
                    f"{r.seconds:.2f}",
                    f"{r.jobs_per_s:.0f}",
                ]
                for r in sorted(results.zkq, key=lambda r: r.slots)
            ],
        )
    )
    add("")
    add("3. Baseline: kazoo LockingQueue (get + consume per job; each consumer its own session)")
    pairs = {p.consumers: p for p in ratios(results.zkq, results.lq)}
    add(
        table(
            ["consumers", "procs x threads", "put", "consumed", "seconds", "jobs/s", "zkq/LQ"],
            [
                [
                    r.consumers,
                    f"{r.processes}x{r.threads_per_process}",
                    r.jobs,
                    r.completed,
                    f"{r.seconds:.2f}" + (" (cap)" if r.capped else ""),
                    f"{r.jobs_per_s:.0f}",
                    _ratio_cell(pairs.get(r.consumers)),
                ]
                for r in sorted(results.lq, key=lambda r: r.consumers)
            ],
        )
    )
    add("")
    add("4. ZooKeeper transactions per job (leader zxid delta over the run, idle rate subtracted)")
    add("   and requests per job (srvr Received summed over nodes: reads, writes and pings)")
    add(
        table(
            ["system", "jobs", "txns", "idle txns/s", "txns/job", "requests/job"],
            [
                [
                    f"zkq {r.shape}",
                    r.succeeded,
                    r.transactions,
                    f"{r.idle.transactions_per_s:.1f}",
                    _fmt(r.transactions_per_job),
                    _fmt(r.requests_per_job, 1),
                ]
                for r in results.zkq
            ]
            + [
                [
                    f"LockingQueue {r.consumers}",
                    r.completed,
                    r.transactions,
                    f"{r.idle.transactions_per_s:.1f}",
                    _fmt(r.transactions_per_job),
                    _fmt(r.requests_per_job, 1),
                ]
                for r in results.lq
            ],
        )
    )
    calibration = ", ".join(
        f"{r.ops} {r.mode} creates moved the zxid by {r.transactions}" for r in results.raw
    )
    if calibration:
        add(f"  calibration: {calibration}")
    add("")
    add("5. Watch notifications per job (sum over every ZooKeeper node of mntr's")
    add("   zk_sum_node_*_watch_count: notifications sent to all sessions; idle rate subtracted)")
    add(
        table(
            ["system", "workers/consumers", "notifications", "per job"],
            [
                [
                    f"zkq {r.shape}",
                    r.workers,
                    r.notifications,
                    _fmt(r.notifications_per_job),
                ]
                for r in notification_rows(results.zkq)
            ]
            + [
                [
                    "LockingQueue",
                    r.consumers,
                    r.notifications,
                    _fmt(r.notifications_per_job),
                ]
                for r in results.lq
            ],
        )
    )
    add("")
    add("6. Memory (RSS, MiB; psutil): leader coordinator and workers (mean, max), idle and after")
    add(
        table(
            ["row", "leader idle", "leader after", "worker idle", "worker after", "worker max"],
            [
                [
                    r.shape,
                    _fmt(_mib(r.memory.leader_idle), 1),
                    _fmt(_mib(r.memory.leader_after), 1),
                    _fmt(_mib(r.memory.worker_idle_mean), 1),
                    _fmt(_mib(r.memory.worker_after_mean), 1),
                    _fmt(_mib(r.memory.worker_after_max), 1),
                ]
                for r in results.zkq
            ],
        )
    )
    add("")
    add("7. CPU per job (ms, psutil user+system over the window) by process role, and the share")
    add("   of all CPUs those processes kept busy")
    cpus = meta.get("cpus")
    add(
        table(
            ["row", "zookeeper", "leader", "workers/consumers", "bench", "busy"],
            [
                [
                    name,
                    _fmt(per_job_ms(row.cpu.get("zookeeper", 0.0), done), 2),
                    _fmt(per_job_ms(row.cpu["leader"], done), 2) if "leader" in row.cpu else None,
                    _fmt(
                        per_job_ms(row.cpu.get("workers", row.cpu.get("consumers", 0.0)), done),
                        2,
                    ),
                    _fmt(per_job_ms(row.cpu.get("bench", 0.0), done), 2),
                    _percent(busy_share(row.cpu, row.seconds, cpus)),
                ]
                for name, row, done in _cpu_rows(results)
            ],
        )
    )
    summary(out, verdicts(results), meta.get("notes") or [])
    return "\n".join(out)


def _cpu_rows(results: BenchResults) -> list[tuple[str, ZkqRow | LqRow, int]]:
    rows: list[tuple[str, ZkqRow | LqRow, int]] = [
        (f"zkq {r.shape}", r, r.succeeded) for r in results.zkq
    ]
    rows += [(f"LockingQueue {r.consumers}", r, r.completed) for r in results.lq]
    return rows


def _ratio_cell(pair: Ratio | None) -> str | None:
    if pair is None or pair.ratio is None:
        return None
    return f"{pair.ratio:.1f}x"


def _percent(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.0f}%"

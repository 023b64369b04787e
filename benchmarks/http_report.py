"""Judging and printing the HTTP bench: verdicts, text tables and JSON.

Pure functions of :class:`~benchmarks.http_results.HttpBenchResults`; no I/O, so the rules
are unit-tested without a cluster.  The tables use :func:`benchmarks.report.table`.

The verdicts:

- **ZooKeeper stays flat over a long run** (issue 3): after the warm-up (the first
  retention window, doubled, plus a pruning round), the largest ``zk_approximate_data_size``
  and ``zk_znode_count`` of the last third of the samples are at most :data:`BAND` times
  the largest of the first third;
- while the jobs processed keep rising (each third ends higher than the one before) and the
  MySQL archive keeps growing: a flat ZooKeeper with nothing processed proves nothing;
- no submission failed in any section (a 429 would mean the bench key was throttled);
- the paced loop kept its pace (at least :data:`PACE` of its target rate), or its
  latencies describe a saturated stack rather than half the peak.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.http_results import (
    HttpBenchResults,
    RetentionRun,
    SizeSample,
    ThroughputRow,
)
from benchmarks.report import MIB, MISS, NA, PASS, Verdict, summary, table

BAND = 1.5
PACE = 0.95
KIB = 1024

AUTH_ON, AUTH_OFF, DIRECT = "HTTP, auth on", "HTTP, auth off", "direct"


# -- the long run ---------------------------------------------------------------------------
def after_warmup(run: RetentionRun) -> list[SizeSample]:
    return [s for s in run.samples if s.t >= run.warmup]


def thirds(samples: Sequence[SizeSample]) -> tuple[list[SizeSample], list[SizeSample]] | None:
    """The first and last third of the samples (None with fewer than three)."""
    if len(samples) < 3:
        return None
    k = len(samples) // 3
    return list(samples[:k]), list(samples[-k:])


def flat(
    run: RetentionRun,
    name: str,
    value: Callable[[SizeSample], int],
    unit: Callable[[int], str],
    band: float = BAND,
) -> Verdict:
    target = f"last third's max <= {band:g}x the first third's, after {run.warmup:g}s warm-up"
    parts = thirds(after_warmup(run))
    if parts is None:
        return Verdict(name, target, "fewer than three samples after the warm-up", NA)
    first = max(value(s) for s in parts[0])
    last = max(value(s) for s in parts[1])
    ratio = last / first if first > 0 else None
    measured = f"{unit(first)} -> {unit(last)}" + (f" ({ratio:.2f}x)" if ratio else "")
    ok = ratio is not None and ratio <= band
    return Verdict(name, target, measured, PASS if ok else MISS)


def data_size_flat(run: RetentionRun, band: float = BAND) -> Verdict:
    return flat(run, "ZooKeeper data size stays flat", lambda s: s.data_bytes, _kib, band)


def znodes_flat(run: RetentionRun, band: float = BAND) -> Verdict:
    return flat(run, "ZooKeeper znode count stays flat", lambda s: s.znodes, str, band)


def processed_rises(run: RetentionRun) -> Verdict:
    name = "jobs processed keep rising"
    target = "each third of the run ends higher than the one before"
    samples = [s for s in after_warmup(run) if s.processed is not None]
    if len(samples) < 3:
        return Verdict(name, target, "fewer than three samples after the warm-up", NA)
    k = len(samples) // 3
    ends = [samples[k - 1], samples[2 * k - 1], samples[-1]]
    counts = [s.processed or 0 for s in ends]
    ok = counts[0] < counts[1] < counts[2]
    measured = " -> ".join(f"{c} at {s.t:.0f}s" for c, s in zip(counts, ends, strict=True))
    return Verdict(name, target, measured, PASS if ok else MISS)


def archive_rises(run: RetentionRun) -> Verdict:
    name = "the MySQL archive keeps growing"
    target = "more rows at the end than before, and than after the warm-up"
    samples = [s for s in after_warmup(run) if s.archived is not None]
    if run.archived_before is None or run.archived_after is None or len(samples) < 2:
        return Verdict(name, target, "not read", NA)
    first = samples[0].archived or 0
    ok = run.archived_before < first < run.archived_after
    measured = f"{run.archived_before} -> {first} -> {run.archived_after} rows"
    return Verdict(name, target, measured, PASS if ok else MISS)


def retention_verdicts(run: RetentionRun | None) -> list[Verdict]:
    if run is None:
        return []
    return [data_size_flat(run), znodes_flat(run), processed_rises(run), archive_rises(run)]


# -- the HTTP sections ----------------------------------------------------------------------
def no_errors(results: HttpBenchResults) -> Verdict:
    failed: dict[str, int] = {}
    sections: list[tuple[str, dict[str, int]]] = [(r.name, r.errors) for r in results.throughput]
    if results.latency is not None:
        sections.append(("paced", results.latency.errors))
    if results.retention is not None:
        sections.append(("long run", results.retention.errors))
    for section, errors in sections:
        for what, count in errors.items():
            failed[f"{section}: {what}"] = count
    name = "every submission accepted"
    if not sections:
        return Verdict(name, "no errors", "nothing measured", NA)
    measured = ", ".join(f"{k} x{v}" for k, v in sorted(failed.items())) or "no errors"
    return Verdict(name, "no errors (a 429 means throttled)", measured, MISS if failed else PASS)


def kept_pace(results: HttpBenchResults, pace: float = PACE) -> Verdict:
    name = "the paced load kept its pace"
    target = f">= {pace:.0%} of the target rate"
    row = results.latency
    if row is None:
        return Verdict(name, target, "not measured", NA)
    measured = f"{row.achieved_rate:.0f} of {row.target_rate:.0f} jobs/s"
    return Verdict(
        name, target, measured, PASS if row.achieved_rate >= pace * row.target_rate else MISS
    )


def verdicts(results: HttpBenchResults) -> list[Verdict]:
    return [
        no_errors(results),
        kept_pace(results),
        *retention_verdicts(results.retention),
    ]


def passed(results: HttpBenchResults) -> bool:
    return all(v.verdict != MISS for v in verdicts(results))


def ratio(a: ThroughputRow | None, b: ThroughputRow | None) -> float | None:
    if a is None or b is None or b.per_s <= 0:
        return None
    return a.per_s / b.per_s


# -- JSON -----------------------------------------------------------------------------------
def to_json(results: HttpBenchResults) -> dict[str, Any]:
    on, off, direct = (results.row(n) for n in (AUTH_ON, AUTH_OFF, DIRECT))
    return {
        "meta": results.meta,
        "throughput": [r.to_dict() for r in results.throughput],
        "ratios": {
            "auth_on_vs_off": _round(ratio(on, off)),
            "auth_on_vs_direct": _round(ratio(on, direct)),
            "auth_off_vs_direct": _round(ratio(off, direct)),
        },
        "latency": results.latency.to_dict() if results.latency else None,
        "memory": [
            {
                "frontend": f.name,
                "processes": [
                    {
                        "role": p.role,
                        "pid": p.pid,
                        **{f"{k}_mib": _mib(v) for k, v in p.rss.items()},
                    }
                    for p in f.processes
                ],
            }
            for f in results.memory
        ],
        "retention": results.retention.to_dict() if results.retention else None,
        "summary": [
            {"name": v.name, "target": v.target, "measured": v.measured, "verdict": v.verdict}
            for v in verdicts(results)
        ],
    }


# -- text -----------------------------------------------------------------------------------
def render(results: HttpBenchResults) -> str:
    meta = results.meta
    out: list[str] = []
    add = out.append
    add(f"zkq bench http{' (quick)' if meta.get('quick') else ''}: {meta.get('when', '')}")
    add(
        f"  stack: {meta.get('zk_nodes')} ZooKeeper nodes, MariaDB, {meta.get('coordinators')} "
        f"coordinators (--retention {meta.get('retention'):g}), {meta.get('workers')} workers x "
        f"{meta.get('slots')} slots (worker.builtin), {meta.get('frontends')} gunicorn "
        f"frontends (1 gevent worker each), HAProxy"
    )
    add(
        f"  {meta.get('cpus')} CPUs, load average {meta.get('load_before')} before, "
        f"{meta.get('load_after')} after"
    )
    section = 0

    def heading(*lines: str) -> None:
        nonlocal section
        section += 1
        add("")
        add(f"{section}. {lines[0]}")
        for line in lines[1:]:
            add(f"   {line}")

    if results.throughput:
        heading(
            'Submissions per second: closed loop, POST /v1/jobs {"type": "noop"} (HTTP) or',
            "Client.submit (direct), each connection sending as soon as its answer came",
        )
        add(
            table(
                [
                    "path",
                    "through",
                    "conns",
                    "seconds",
                    "accepted",
                    "errors",
                    "jobs/s",
                    "p50 ms",
                    "p99 ms",
                    "backlog at end",
                    "drained in",
                ],
                [
                    [
                        r.name,
                        r.path,
                        r.connections,
                        f"{r.seconds:.1f}",
                        r.ok,
                        sum(r.errors.values()),
                        f"{r.per_s:.0f}",
                        _ms(r.latency.p50),
                        _ms(r.latency.p99),
                        r.backlog_end,
                        _drained(r),
                    ]
                    for r in results.throughput
                ],
            )
        )
        on, off, direct = (results.row(n) for n in (AUTH_ON, AUTH_OFF, DIRECT))
        shares = [
            f"auth on / auth off {_x(ratio(on, off))}",
            f"auth on / direct {_x(ratio(on, direct))}",
            f"auth off / direct {_x(ratio(off, direct))}",
        ]
        add(f"  ratios: {', '.join(shares)}")
    if results.latency is not None:
        row = results.latency
        heading(
            f"Latency at half the auth-on peak: an open loop paced at {row.target_rate:.0f} "
            f"jobs/s (peak {row.peak:.0f}),",
            "auth on, latency from each submission's due time",
        )
        add(
            table(
                [
                    "target/s",
                    "achieved/s",
                    "conns",
                    "seconds",
                    "accepted",
                    "errors",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "max ms",
                ],
                [
                    [
                        f"{row.target_rate:.0f}",
                        f"{row.achieved_rate:.0f}",
                        row.connections,
                        f"{row.seconds:.1f}",
                        row.ok,
                        sum(row.errors.values()),
                        _ms(row.latency.p50),
                        _ms(row.latency.p90),
                        _ms(row.latency.p99),
                        _ms(row.latency.max),
                    ]
                ],
            )
        )
    if results.memory:
        moments = _moments(results)
        heading(
            "gunicorn memory (RSS, MiB; psutil): each frontend's master and its gevent worker",
        )
        add(
            table(
                ["frontend", "process", "pid", *(m.replace("_", " ") for m in moments)],
                [
                    [f.name, p.role, p.pid, *(_mib_cell(p.rss.get(m)) for m in moments)]
                    for f in results.memory
                    for p in f.processes
                ],
            )
        )
    if results.retention is not None:
        run = results.retention
        heading(
            f"ZooKeeper's data over a long run: {run.rate:g} jobs/s through HAProxy (auth on) "
            f"for {run.seconds:g}s,",
            f"coordinators pruning jobs {run.retention:g}s after they end (a round every "
            f"{run.prune_interval:g}s); mntr of the leader",
        )
        add(
            table(
                ["t s", "submitted", "processed", "backlog", "archived", "znodes", "data KiB"],
                [
                    [
                        f"{s.t:.0f}" + (" (warm-up)" if s.t < run.warmup else ""),
                        s.submitted,
                        s.processed,
                        s.backlog,
                        s.archived,
                        s.znodes,
                        f"{s.data_bytes / KIB:.0f}",
                    ]
                    for s in run.samples
                ],
            )
        )
    summary(out, verdicts(results), meta.get("notes") or [])
    return "\n".join(out)


def _moments(results: HttpBenchResults) -> list[str]:
    seen: list[str] = []
    for f in results.memory:
        for p in f.processes:
            seen += [m for m in p.rss if m not in seen]
    return seen


def _drained(row: ThroughputRow) -> str | None:
    if row.backlog_end is None:
        return None
    if row.drain_seconds is None:
        return "no (cap)"
    return f"{row.drain_seconds:.1f}s"


def _ms(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _kib(value: int) -> str:
    return f"{value / KIB:.0f} KiB"


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


def _mib_cell(value: int | None) -> str | None:
    return None if value is None else f"{value / MIB:.1f}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)

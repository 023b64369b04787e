"""``zkq stats``: per worker and per type, from the attempts kept in job records.

"Which worker is slow, which type fails most, how long do jobs wait": every attempt in a
record names its worker, when it started and ended and how it ended; a record's first
start against its creation is how long it waited.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from zkq.coordinator.job import AttemptOutcome
from zkq.coordinator.listing import scan_jobs
from zkq.coordinator.zk import ZkSession
from zkq.output import table


def _percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _summary(durations: list[float]) -> dict[str, float | None]:
    return {
        "mean": sum(durations) / len(durations) if durations else None,
        "p50": _percentile(durations, 50),
        "p95": _percentile(durations, 95),
    }


def collect(session: ZkSession, limit: int) -> dict[str, Any]:
    scan = scan_jobs(session, None, limit, lambda job: True, time.monotonic() + 60, budget=limit)
    by_worker: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"attempts": 0, "succeeded": 0, "errors": 0, "lost": 0, "timeouts": 0, "run": []}
    )
    by_type: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "jobs": 0,
            "states": defaultdict(int),
            "attempts": 0,
            "errors": 0,
            "run": [],
            "wait": [],
        }
    )
    for job in scan.jobs:
        t = by_type[job.type]
        t["jobs"] += 1
        t["states"][str(job.state)] += 1
        tries = job.tries()  # the requeue entries are no attempts
        if tries:
            t["wait"].append(max(0.0, tries[0].started_at - job.created_at))
        for attempt in tries:
            w = by_worker[attempt.worker]
            w["attempts"] += 1
            t["attempts"] += 1
            outcome = attempt.outcome
            if outcome == AttemptOutcome.SUCCEEDED:
                w["succeeded"] += 1
            elif outcome == AttemptOutcome.ERROR:
                w["errors"] += 1
                t["errors"] += 1
            elif outcome == AttemptOutcome.LOST:
                w["lost"] += 1
            elif outcome == AttemptOutcome.TIMEOUT:
                w["timeouts"] += 1
            if attempt.ended_at is not None:
                took = attempt.ended_at - attempt.started_at
                w["run"].append(took)
                t["run"].append(took)
    workers = {
        wid: {**{k: v for k, v in w.items() if k != "run"}, "run_seconds": _summary(w["run"])}
        for wid, w in by_worker.items()
    }
    types = {
        name: {
            "jobs": t["jobs"],
            "states": dict(t["states"]),
            "attempts": t["attempts"],
            "error_rate": t["errors"] / t["attempts"] if t["attempts"] else 0.0,
            "run_seconds": _summary(t["run"]),
            "wait_seconds": _summary(t["wait"]),
        }
        for name, t in by_type.items()
    }
    return {
        "jobs_read": len(scan.jobs),
        "complete": scan.exhausted,
        "workers": workers,
        "types": types,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def render(report: dict[str, Any]) -> str:
    types = table(
        [
            (
                name,
                t["jobs"],
                t["attempts"],
                f"{t['error_rate']:.1%}",
                _ms(t["wait_seconds"]["p50"]),
                _ms(t["wait_seconds"]["p95"]),
                _ms(t["run_seconds"]["p50"]),
                _ms(t["run_seconds"]["p95"]),
                ", ".join(f"{k} {v}" for k, v in sorted(t["states"].items())),
            )
            for name, t in sorted(report["types"].items())
        ],
        [
            "TYPE",
            "JOBS",
            "ATTEMPTS",
            "ERRORS",
            "WAIT P50 MS",
            "WAIT P95 MS",
            "RUN P50 MS",
            "RUN P95 MS",
            "STATES",
        ],
    )
    workers = table(
        [
            (
                wid,
                w["attempts"],
                w["succeeded"],
                w["errors"],
                w["lost"],
                w["timeouts"],
                _ms(w["run_seconds"]["mean"]),
                _ms(w["run_seconds"]["p95"]),
            )
            for wid, w in sorted(report["workers"].items())
        ],
        ["WORKER", "ATTEMPTS", "OK", "ERRORS", "LOST", "TIMEOUTS", "RUN MEAN MS", "RUN P95 MS"],
    )
    note = "" if report["complete"] else f"\n(first {report['jobs_read']} jobs only: raise --limit)"
    return f"By type\n{types}\n\nBy worker\n{workers}{note}"

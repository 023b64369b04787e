"""``zkq bench lateness``: how late scheduled jobs start, idle, with a backlog, and in a burst.

Lateness is ``started_at - run_at``, both read from the job's record (one host, one clock).
Three runs on one private stack (3 ZooKeeper nodes, 2 coordinators, 2 workers of 16 slots
running ``noop``):

* idle: M jobs due uniformly over a window starting a few seconds ahead;
* loaded: N jobs due far in the future (hours ahead: the backlog, written with the batch
  path) and then the same M measured jobs.  The claim to check is that the figures equal
  the idle ones within noise: a round costs what falls due, not what waits;
* burst: B jobs due at one moment.  Lateness grows with a job's position in the burst; the
  jobs per second it drains at is the promotion-plus-dispatch rate.

Figures are printed, never asserted (they depend on the machine and its load).
"""

from __future__ import annotations

import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stack import bench_cluster, load_average
from zkq.coordinator.client import Client
from zkq.coordinator.job import Job, JobSpec, JobState
from zkq.dev.waiting import wait_until

Progress = Callable[[str], None]

#: how long the bench waits for one run's jobs to end before it gives up (not a target)
GIVE_UP = 600.0
#: jobs per submit_many call
CHUNK = 2_000
#: seconds between the due times of the backlog's jobs
BACKLOG_STEP = 60.0


@dataclass(frozen=True)
class LatenessPlan:
    measured: int = 1_000  # M: jobs measured in the idle and loaded runs
    window: float = 60.0  # seconds their run_at spread over
    lead: float = 10.0  # seconds ahead the window starts
    scheduled: int = 100_000  # N: the far-future backlog
    backlog_hours: float = 2.0
    burst: int = 10_000  # B: jobs due at one moment
    slots: int = 16  # per worker, two workers


FULL = LatenessPlan()
QUICK = LatenessPlan(measured=50, window=5.0, lead=5.0, scheduled=1_000, burst=200)


@dataclass
class Run:
    """The lateness of each job of one run, in seconds."""

    name: str
    samples: list[float] = field(default_factory=list)
    succeeded: int = 0
    jobs: int = 0
    rate: float | None = None  # jobs per second the run drained at (the burst)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)
        if not ordered:
            return {}

        def rank(q: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

        return {
            "n": len(ordered),
            "p50": rank(0.5),
            "p90": rank(0.9),
            "p99": rank(0.99),
            "max": ordered[-1],
        }


@dataclass
class LatenessResults:
    meta: dict[str, Any] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)


def run(plan: LatenessPlan, progress: Progress, state_dir: Path | None = None) -> LatenessResults:
    results = LatenessResults(
        meta={
            "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "plan": asdict(plan),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_before": load_average(),
        }
    )
    with bench_cluster(state_dir, progress, "zkq-bench-lateness-") as (cluster, _base):
        progress("starting 3 ZooKeeper nodes, 2 coordinators, 2 workers")
        cluster.up(workers=2, coordinators=2, worker_concurrency=plan.slots, tick_ms=200)
        results.meta["connect"] = cluster.connect_string
        client = Client(cluster.config("frontend"), connect_timeout=30.0)
        client.start()
        try:
            progress(f"idle: {plan.measured} jobs due over {plan.window:g} s")
            results.runs.append(measured(client, "idle", plan))
            progress(f"loaded: writing {plan.scheduled} jobs due in the next hours")
            started = time.monotonic()
            backlog(client, plan)
            results.meta["backlog_write_s"] = round(time.monotonic() - started, 1)
            progress(f"loaded: {plan.measured} jobs due over {plan.window:g} s")
            results.runs.append(measured(client, f"loaded ({plan.scheduled} waiting)", plan))
            progress(f"burst: {plan.burst} jobs due at one moment")
            results.runs.append(burst(client, plan))
        finally:
            client.close()
    results.meta["load_after"] = load_average()
    return results


def submit(client: Client, specs: Sequence[JobSpec]) -> list[Job]:
    jobs: list[Job] = []
    for start in range(0, len(specs), CHUNK):
        jobs += client.submit_many(specs[start : start + CHUNK])
    return jobs


def backlog(client: Client, plan: LatenessPlan) -> None:
    far = time.time() + 3_600.0  # beyond every measured job, and beyond the bench's end
    spread = plan.backlog_hours * 3_600.0
    # due on whole minutes: a submission makes each due bucket it is the first to write into
    # with round trips of its own, one at a time, which would be most of the bench's time
    steps = max(1, int(spread / BACKLOG_STEP))
    specs = [
        JobSpec("noop", run_at=far + random.randrange(steps) * BACKLOG_STEP)
        for _ in range(plan.scheduled)
    ]
    submit(client, specs)


def measured(client: Client, name: str, plan: LatenessPlan) -> Run:
    start = time.time() + plan.lead
    specs = [
        JobSpec("noop", run_at=start + random.random() * plan.window) for _ in range(plan.measured)
    ]
    return collect(client, name, submit(client, specs))


def burst(client: Client, plan: LatenessPlan) -> Run:
    # far enough ahead that the whole burst is written, scheduled, before it falls due
    due = time.time() + plan.lead + plan.burst / 1_000
    jobs = submit(client, [JobSpec("noop", run_at=due) for _ in range(plan.burst)])
    out = collect(client, f"burst of {plan.burst}", jobs)
    if out.samples:
        out.rate = len(out.samples) / max(max(out.samples), 1e-3)
    return out


def collect(client: Client, name: str, jobs: list[Job]) -> Run:
    ids = [job.id for job in jobs]
    ended: dict[str, Job] = {}

    def all_ended() -> bool:
        left = [i for i in ids if i not in ended]
        for start in range(0, len(left), CHUNK):
            for job_id, (job, _) in client.store.get_many(left[start : start + CHUNK]).items():
                if job.terminal:
                    ended[job_id] = job
        return len(ended) == len(ids)

    wait_until(all_ended, GIVE_UP, interval=1.0, what=f"the {name} jobs to end")
    out = Run(name, jobs=len(ids))
    for job in ended.values():
        if job.state == JobState.SUCCEEDED:
            out.succeeded += 1
            if job.started_at is not None and job.run_at is not None:
                out.samples.append(job.started_at - job.run_at)
    return out


def to_json(results: LatenessResults) -> dict[str, Any]:
    return {
        "meta": results.meta,
        "runs": [
            {
                "name": r.name,
                "jobs": r.jobs,
                "succeeded": r.succeeded,
                "rate_per_s": r.rate,
                **r.summary(),
            }
            for r in results.runs
        ],
    }


def render(results: LatenessResults) -> str:
    meta = results.meta
    lines = [
        f"zkq bench lateness ({meta['when']}; {meta['cpus']} CPUs; load before "
        f"{meta['load_before']}, after {meta.get('load_after', '?')})",
        "lateness = started_at - run_at, from the records",
        "",
        f"{'run':<28} {'ok':>6} {'p50':>9} {'p90':>9} {'p99':>9} {'max':>9}   rate",
    ]
    for r in results.runs:
        s = r.summary()
        cells = " ".join(f"{_seconds(s[k]) if s else '-':>9}" for k in ("p50", "p90", "p99", "max"))
        rate = f"{r.rate:.0f} jobs/s" if r.rate else ""
        lines.append(f"{r.name:<28} {r.succeeded:>6} {cells}   {rate}")
    if "backlog_write_s" in meta:
        lines.append("")
        lines.append(
            f"backlog of {meta['plan']['scheduled']} written in {meta['backlog_write_s']} s"
        )
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"

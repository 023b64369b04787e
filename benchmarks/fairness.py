"""Short jobs are not stuck behind long ones: the demonstration of reserved slots.

Three workers of ``benchmarks.fairness_app`` with 4 slots each.  Long jobs (declared
``lane="long"``) are submitted until as many run as they may, then a burst of 1-ms short
jobs; what is measured is how long each short job waited (``started_at - created_at``)
and the burst's end to end time.  With ``--reserve 1`` the long jobs take 9 slots and the
short ones run in the 3 kept back; with ``--reserve 0`` every slot holds a long job and the
burst waits for the first to end.

:func:`run_burst` is shared with tests/cluster/test_fairness.py, which asserts what the
bench prints: it takes the submit/get/wait of either client (HTTP or ZooKeeper).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.fairness_app import LONG, SHORT
from zkq.coordinator.errors import Conflict
from zkq.coordinator.job import Job, JobSpec, JobState
from zkq.dev.waiting import wait_until

TERMINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD, JobState.CANCELLED}


@dataclass
class Burst:
    waits: list[float]  # each short job's started_at - created_at, seconds
    seconds: float  # first short job created to last one finished
    short_succeeded: int
    long_started: int  # long jobs that had begun an attempt when the burst was over
    long_ended: int  # long jobs that had ended then
    long_ids: list[str]

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.waits)
        return {
            "p50": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
            "max": ordered[-1],
            "burst_seconds": self.seconds,
        }


def run_burst(
    submit: Callable[[Sequence[JobSpec]], list[Job]],
    get: Callable[[str], Job],
    wait: Callable[[str, float], Job],
    long_count: int = 30,
    short_count: int = 100,
    long_seconds: float = 60.0,
    running: int = 9,
    timeout: float = 120.0,
    submitted: list[str] | None = None,
) -> Burst:
    """Submit ``long_count`` long jobs, wait until ``running`` of them run, submit
    ``short_count`` short ones in one batch and wait for each to end.  ``submitted`` gets
    the long jobs' ids at once, for the caller to cancel whatever happens."""
    longs = submit([JobSpec(LONG, long_seconds) for _ in range(long_count)])
    if submitted is not None:
        submitted.extend(j.id for j in longs)

    def started() -> int:
        return sum(1 for j in longs if get(j.id).state == JobState.RUNNING)

    wait_until(lambda: started() >= running, timeout, interval=0.2, what=f"{running} long jobs")
    shorts = submit([JobSpec(SHORT) for _ in range(short_count)])
    done = [wait(j.id, timeout) for j in shorts]
    after = [get(j.id) for j in longs]
    finished = [j.finished_at for j in done if j.finished_at is not None]
    return Burst(
        waits=[(j.started_at or j.created_at) - j.created_at for j in done],
        seconds=max(finished, default=0.0) - min(j.created_at for j in done),
        short_succeeded=sum(1 for j in done if j.state == JobState.SUCCEEDED),
        long_started=sum(1 for j in after if j.attempts > 0 or j.started_at is not None),
        long_ended=sum(1 for j in after if j.state in TERMINAL),
        long_ids=[j.id for j in longs],
    )


def cancel_all(cancel: Callable[[str], Any], job_ids: Sequence[str]) -> None:
    for job_id in job_ids:
        try:
            cancel(job_id)
        except Conflict:  # it ended meanwhile: nothing to cancel
            continue


def describe(burst: Burst) -> str:
    s = burst.summary()
    return (
        f"short job wait p50 {s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms, "
        f"max {s['max'] * 1000:.0f} ms; burst end to end {s['burst_seconds']:.2f} s; "
        f"{burst.short_succeeded} succeeded; long jobs started {burst.long_started}, "
        f"ended {burst.long_ended}"
    )


# -- zkq bench fairness ------------------------------------------------------------------------
def run(
    long_seconds: float,
    progress: Callable[[str], None],
    state_dir: Path | None = None,
) -> dict[int, Burst]:
    """The burst with ``--reserve 1`` and then ``--reserve 0``, on a private cluster
    (three ZooKeeper nodes, one coordinator, three workers of 4 slots), submitting through
    ZooKeeper (the HTTP path is the cluster test's)."""
    from benchmarks.stack import bench_cluster
    from zkq.coordinator import census
    from zkq.coordinator.client import Client

    out: dict[int, Burst] = {}
    with bench_cluster(state_dir, progress, "zkq-bench-fairness-") as (cluster, _base):
        progress("starting 3 ZooKeeper nodes and a coordinator")
        cluster.up(workers=0, coordinators=1, tick_ms=200, timeout=120.0)
        client = Client(cluster.config("frontend"), connect_timeout=30.0)
        client.start()
        try:
            for reserve in (1, 0):
                names = [f"fair-{reserve}-{n}" for n in range(3)]
                progress(f"3 workers x 4 slots, --reserve {reserve}")
                for name in names:
                    cluster.add_worker(
                        app="benchmarks.fairness_app",
                        concurrency=4,
                        extra_args=["--reserve", str(reserve)],
                        name=name,
                    )
                cluster.wait_registered(workers=3, coordinators=1)
                longs: list[str] = []
                try:
                    out[reserve] = run_burst(
                        client.submit_many,
                        client.get,
                        client.wait,
                        long_seconds=long_seconds,
                        running=9 if reserve else 12,
                        timeout=long_seconds * 3 + 60,
                        submitted=longs,
                    )
                    progress(describe(out[reserve]))
                finally:
                    cancel_all(client.cancel, longs)
                    for name in names:
                        cluster.stop_member(name, timeout=5)
                    # a worker killed after the 5 s stays registered until its session
                    # expires: the next round must not count it, nor be assigned to it
                    wait_until(
                        lambda: not census.workers(client.store.session, time.monotonic() + 5),
                        120,
                        what="the workers' registrations to go",
                    )
        finally:
            client.close()
    return out


def to_json(results: dict[int, Burst]) -> dict[str, Any]:
    return {
        f"reserve_{reserve}": {
            **burst.summary(),
            "short_succeeded": burst.short_succeeded,
            "long_started": burst.long_started,
            "long_ended": burst.long_ended,
        }
        for reserve, burst in results.items()
    }


def render(results: dict[int, Burst]) -> str:
    lines = ["Short jobs behind long ones: 3 workers x 4 slots, 30 long jobs, 100 short"]
    for reserve, burst in results.items():
        lines.append(f"  --reserve {reserve}: {describe(burst)}")
    return "\n".join(lines)

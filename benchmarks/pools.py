"""``zkq bench pools``: what a process pool costs against threads, to decide the default of
``zkq worker --pool`` by the rule written down before measuring (docs/architecture.md,
"Stopping handlers: pools and lost slots"): process becomes the default if, at 8 slots, it
loses at most 10 % of noop throughput and 1 ms of p50 submit-to-end time against threads,
and a slot costs at most 60 MB of resident memory.

Measured on one private local cluster (three ZooKeeper nodes, one coordinator), one worker
of 8 slots at a time: noop throughput and p50/p99 from submission to the end of the job
(the record's ``created_at`` to ``finished_at``); the worker's RSS with its children; and,
in this process, the per-job overhead of a process slot over a thread (pickling and two
pipe hops) and the time to refill a slot (spawn a child that imports the app).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import click

SLOTS = 8
MB = 1024 * 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def cluster_rows(jobs: int, progress: Callable[[str], None]) -> dict[str, dict[str, float]]:
    import psutil

    from benchmarks.runner import ROOT, SERVICE_ENV
    from benchmarks.stack import bench_cluster
    from zkq.coordinator.client import Client
    from zkq.coordinator.job import JobSpec, JobState
    from zkq.dev.waiting import wait_until

    rows: dict[str, dict[str, float]] = {}
    with bench_cluster(None, progress, "zkq-bench-pools-") as (cluster, _base):
        progress("starting a 3-node ZooKeeper ensemble and a coordinator")
        cluster.up(workers=0, coordinators=1, zk_size=3, root=ROOT, env=SERVICE_ENV, timeout=120.0)
        client = Client(cluster.config("frontend"), connect_timeout=30.0)
        client.start()
        try:
            for kind in ("thread", "process"):
                progress(f"{kind} pool: one worker of {SLOTS} slots, {jobs} noop jobs")
                worker = cluster.add_worker(concurrency=SLOTS, extra_args=["--pool", kind])
                wait_until(lambda: client.workers(), 90, interval=0.1, what="the worker")
                client.wait(client.submit("noop", None).id, 60)  # warm: children spawned
                began = time.perf_counter()
                submitted = client.submit_many([JobSpec("noop") for _ in range(jobs)])
                ends = [client.wait(job.id, 300) for job in submitted]
                seconds = time.perf_counter() - began
                assert all(job.state == JobState.SUCCEEDED for job in ends), kind
                latency = [(j.finished_at or 0) - j.created_at for j in ends]
                proc = psutil.Process(worker.pid)
                rss = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True)
                )
                rows[kind] = {
                    "jobs_per_s": jobs / seconds,
                    "p50_ms": 1000 * statistics.median(latency),
                    "p99_ms": 1000 * percentile(latency, 0.99),
                    "rss_mb": rss / MB,
                }
                cluster.stop_member(cluster.workers[-1].name)
                wait_until(lambda: not client.workers(), 60, interval=0.1, what="worker gone")
        finally:
            client.close()
    return rows


def overhead_us(runs: int) -> tuple[float, float]:
    """Mean microseconds per noop in a thread and in a process slot, run back to back."""
    from zkq.worker import builtin  # noqa: F401  (fills the registry the slots serve)
    from zkq.worker.control import AttemptControl
    from zkq.worker.pools import Pool, ThreadPool
    from zkq.worker.process_slots import ProcessSlots
    from zkq.worker.registry import JobContext, registry

    means = []
    candidates: list[Pool] = [ThreadPool(registry), ProcessSlots(registry, "zkq.worker.builtin", 1)]
    for pool in candidates:
        pool.run("noop", None, JobContext("warm", "noop", 1, 1))
        began = time.perf_counter()
        for n in range(runs):
            ctx = JobContext(f"j{n}", "noop", 1, 1, control=AttemptControl(f"j{n}", 300))
            assert pool.run("noop", None, ctx).ok
        means.append(1e6 * (time.perf_counter() - began) / runs)
        pool.shutdown()
    return means[0], means[1]


def refill_seconds(times: int) -> float:
    from zkq.worker.process_slots import SpawnedChild

    spent = []
    for _ in range(times):
        began = time.perf_counter()
        child = SpawnedChild("zkq.worker.builtin", ("zkq.worker.registry", "registry"))
        spent.append(time.perf_counter() - began)
        child.retire()
    return statistics.median(spent)


@click.command("pools")
@click.option("--jobs", type=click.IntRange(10, 100_000), default=1000, show_default=True)
@click.option("--quick", is_flag=True, help="200 jobs, fewer overhead runs.")
def pools(jobs: int, quick: bool) -> None:
    """Thread against process pool: noop throughput and p50/p99 at 8 slots on a private
    local cluster, per-job overhead, RSS per slot, slot refill time; and the verdict of the
    rule that decides the default of `zkq worker --pool`.  A few minutes (--quick: ~1)."""

    def progress(message: str) -> None:
        click.echo(f"[pools] {message}", err=True)

    from benchmarks.stack import load_average

    jobs = 200 if quick else jobs
    progress(f"load before: {load_average()}")
    thread_us, process_us = overhead_us(200 if quick else 2000)
    refill = refill_seconds(3)
    rows = cluster_rows(jobs, progress)
    t, p = rows["thread"], rows["process"]
    idle_worker_mb = t["rss_mb"]
    per_slot_mb = max(0.0, p["rss_mb"] - idle_worker_mb) / SLOTS
    loss = 1 - p["jobs_per_s"] / t["jobs_per_s"]
    extra_p50 = p["p50_ms"] - t["p50_ms"]
    click.echo(f"{'pool':8} {'jobs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>8}")
    for kind, row in rows.items():
        click.echo(
            f"{kind:8} {row['jobs_per_s']:8.0f} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} "
            f"{row['rss_mb']:8.0f}"
        )
    click.echo(f"per-job run: thread {thread_us:.0f} us, process {process_us:.0f} us")
    click.echo(f"RSS per process slot: {per_slot_mb:.1f} MB; slot refill: {refill:.2f} s")
    ok = loss <= 0.10 and extra_p50 <= 1.0 and per_slot_mb <= 60
    click.echo(
        f"rule: throughput loss {100 * loss:.1f} % (<= 10), p50 +{extra_p50:.2f} ms (<= 1), "
        f"{per_slot_mb:.0f} MB/slot (<= 60): default {'process' if ok else 'thread'}"
    )
    sys.stdout.flush()

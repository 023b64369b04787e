"""One whole bench: a private cluster, every section in turn, everything stopped after.

The cluster is a :class:`~zkq.dev.cluster.DevCluster` in its own state directory (a
temporary one unless given): a three-node ensemble and two coordinators for the whole run,
worker and LockingQueue consumer processes started and stopped row by row.  ``down()`` in a
``finally`` stops every process it started, by pid and start time, whatever happened.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from kazoo.client import KazooClient

from benchmarks.counters import read_counters
from benchmarks.lockingqueue import LockingQueueBench, consumer_layout
from benchmarks.results import BenchResults
from benchmarks.stack import bench_cluster, load_average
from benchmarks.zk_raw import measure_raw
from benchmarks.zkq_jobs import Shape, ZkqBench
from zkq.coordinator.client import Client

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
ROOT = "/zkq"
RAW_ROOT = "/bench-raw"
LQ_ROOT = "/bench-lq"
#: the services run without MySQL whatever the caller's environment says: no archive, no
#: pruning, nothing but ZooKeeper in the measurement
SERVICE_ENV = {"ZKQ_MYSQL_URL": ""}


@dataclass(frozen=True)
class Plan:
    quick: bool
    shapes: tuple[Shape, ...]
    lq_consumers: tuple[int, ...]
    jobs: int
    lq_jobs: int
    lq_cap: float
    raw_pipelined: int
    raw_sequential: int
    raw_window: int
    idle_seconds: float
    tick_ms: int = 2000
    zkq_timeout: float = 120.0
    coordinators: int = 2
    zk_nodes: int = 3


FULL = Plan(
    quick=False,
    shapes=(Shape(1, 1), Shape(1, 4), Shape(4, 4), Shape(16, 4)),
    lq_consumers=(1, 4, 16, 64),
    jobs=1000,
    lq_jobs=1000,
    lq_cap=20.0,
    raw_pipelined=5000,
    raw_sequential=1000,
    raw_window=200,
    idle_seconds=1.0,
)
QUICK = Plan(
    quick=True,
    shapes=(Shape(1, 2), Shape(2, 2)),
    lq_consumers=(2, 4),
    jobs=200,
    lq_jobs=200,
    lq_cap=4.0,
    raw_pipelined=500,
    raw_sequential=100,
    raw_window=100,
    idle_seconds=0.5,
    zkq_timeout=30.0,
)


def notes(plan: Plan) -> list[str]:
    layouts = ", ".join(f"{c}: {p}x{t}" for c in plan.lq_consumers for p, t in [consumer_layout(c)])
    return [
        "zkq rows are <worker processes>x<slots each> ("
        + ", ".join(str(s) for s in plan.shapes)
        + "); the notification rows share the slots per worker, so only the worker count "
        "changes. Workers run `zkq worker --app zkq.worker.builtin` (thread pool), as "
        "`zkq dev` does.",
        f"LockingQueue consumers as processes x threads ({layouts}); every thread has its "
        f"own KazooClient. Each row puts {plan.lq_jobs} entries with one put_all and stops at "
        f"{plan.lq_cap:g}s; jobs/s is what was consumed over the time taken.",
        "Transactions: every write the ensemble committed in the window (the leader's zxid): "
        "submit multis, assign multis, workers' start and complete multis, bucket znodes, "
        "failed writes, session events. The calibration line checks that N creates move "
        "the zxid by N.",
        "Notifications: every watch event sent to any session in the window, counted by the "
        "servers. The bench's own sessions set no watches: it detects the end by polling "
        "the pending shards and inboxes (a job is always in exactly one of pending entry, "
        "inbox entry, terminal record), then reads every record once to confirm.",
        "Everything shares the machine's CPUs: the three ZooKeeper JVMs, the coordinators, "
        "the workers or consumers and the bench itself; figures are for comparison within "
        "this run, not absolute capacity.",
    ]


def run(plan: Plan, progress: Progress, state_dir: Path | None = None) -> BenchResults:
    started = time.monotonic()
    results = BenchResults(
        meta={
            "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "quick": plan.quick,
            "plan": {k: v for k, v in asdict(plan).items() if k != "shapes"}
            | {"shapes": [str(s) for s in plan.shapes]},
            "zk_nodes": plan.zk_nodes,
            "coordinators": plan.coordinators,
            "tick_ms": plan.tick_ms,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_average(),
            "state_dir": str(state_dir) if state_dir is not None else None,
        }
    )
    with bench_cluster(state_dir, progress, "zkq-bench-") as (cluster, base):
        progress(
            f"starting a {plan.zk_nodes}-node ZooKeeper ensemble and "
            f"{plan.coordinators} coordinators"
        )
        cluster.up(
            workers=0,
            coordinators=plan.coordinators,
            tick_ms=plan.tick_ms,
            zk_size=plan.zk_nodes,
            root=ROOT,
            env=SERVICE_ENV,
            timeout=120.0,
        )
        ensemble = cluster.ensemble
        assert ensemble is not None
        results.meta["connect"] = cluster.connect_string

        progress(
            f"raw ZooKeeper: {plan.raw_pipelined} pipelined and {plan.raw_sequential} "
            "sequential creates"
        )
        results.raw = measure_raw(
            cluster.connect_string,
            RAW_ROOT,
            plan.raw_pipelined,
            plan.raw_sequential,
            plan.raw_window,
            lambda: read_counters(ensemble),
            [n.process.pid for n in ensemble.nodes if n.process is not None],
        )

        config = cluster.config("frontend")  # submits and reads as a frontend does
        client = Client(config, connect_timeout=30.0)
        client.start()
        try:
            zkq = ZkqBench(cluster, client, progress, plan.idle_seconds)
            for shape in plan.shapes:
                results.zkq.append(zkq.run(shape, plan.jobs, plan.zkq_timeout))
        finally:
            client.close()

        zk = KazooClient(hosts=cluster.connect_string, timeout=10.0, logger=log)
        zk.start(timeout=30.0)
        try:
            lq = LockingQueueBench(cluster, zk, LQ_ROOT, base, progress, plan.idle_seconds)
            for consumers in plan.lq_consumers:
                results.lq.append(lq.run(consumers, plan.lq_jobs, plan.lq_cap))
        finally:
            zk.stop()
            zk.close()
    results.meta["load_after"] = load_average()
    results.meta["duration_s"] = round(time.monotonic() - started, 1)
    results.meta["notes"] = notes(plan)
    return results

"""``zkq bench http``: the HTTP side in one run, on one private local stack.

The stack is a :class:`~zkq.dev.cluster.DevCluster` in its own state directory (temporary
unless given): three ZooKeeper nodes, MariaDB, two coordinators pruning after a short
retention, two workers of ``zkq.worker.builtin``, two gunicorn frontends and HAProxy.
``down()`` in a ``finally`` stops every process it started, whatever happened.

The sections, in this order (each needs what the one before left):

1. gunicorn memory, idle;
2. the long run: a steady paced load through HAProxy while ZooKeeper's size is sampled
   (first, on an empty tree, so no earlier section's jobs are still being pruned);
3. submissions per second through HAProxy with authentication, rate limiting and the
   request log on (closed loop);
4. p50/p99 latency of an open loop paced at half of that peak; gunicorn memory again;
5. the frontends restarted with ``ZKQ_AUTH=off``, and the closed loop again;
6. direct ``Client.submit`` into ZooKeeper from as many threads: the ceiling without HTTP.

Workers run throughout, so queues drain; after each closed loop the bench reports the
backlog it left and how long the workers took to clear it.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import psutil

from benchmarks.http_load import (
    DirectSubmitter,
    HttpSubmitter,
    SubmitterFactory,
    Tally,
    closed_loop,
    open_loop,
)
from benchmarks.http_report import AUTH_OFF, AUTH_ON, DIRECT
from benchmarks.http_results import (
    AFTER_LOAD,
    AFTER_LONG_RUN,
    IDLE,
    FrontendMemory,
    HttpBenchResults,
    Latencies,
    LatencyRow,
    ProcessMemory,
    ThroughputRow,
)
from benchmarks.stack import bench_cluster, load_average
from benchmarks.zk_size import backlog, long_run, wait_drained
from zkq.coordinator.buckets import EMPTY_SHARD_GRACE
from zkq.coordinator.client import Client
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.coordinator.retention import BUCKET_GRACE, prune_interval
from zkq.dev import frontends as http_side
from zkq.dev import processes
from zkq.dev.cluster import DevCluster
from zkq.dev.errors import DevClusterError, StartupFailed
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.frontend.keys import KeyStore

Progress = Callable[[str], None]
ROOT = "/zkq"
#: high enough never to throttle the bench (the column holds up to 2**31)
RATE_LIMIT = 1_000_000_000
TENANT = "bench"
#: a throwaway stack: a frontend stopped with HAProxy's idle keep-alive connections open
#: would otherwise wait gunicorn's whole graceful timeout (10 s) for them, at the restart
#: with ZKQ_AUTH=off and again at the end
SERVICE_ENV = {"ZKQ_GRACEFUL_TIMEOUT": "2"}


@dataclass(frozen=True)
class HttpPlan:
    quick: bool
    connections: int  # of each closed loop, and threads of the direct one
    peak_seconds: float
    warmup: float  # before each closed loop's window, not counted
    paced_seconds: float
    paced_connections: int
    direct_seconds: float
    retention: float  # the coordinators' --retention
    long_run_seconds: float  # 0: no long run
    long_run_rate: float
    long_run_connections: int
    sample_every: float
    slots: int  # per worker
    drain_cap: float  # longest wait for a backlog to clear
    workers: int = 2
    coordinators: int = 2
    frontends: int = 2
    zk_nodes: int = 3
    tick_ms: int = 2000


FULL = HttpPlan(
    quick=False,
    connections=16,
    peak_seconds=15.0,
    warmup=2.0,
    paced_seconds=10.0,
    paced_connections=32,
    direct_seconds=10.0,
    retention=5.0,
    long_run_seconds=75.0,
    long_run_rate=60.0,
    long_run_connections=16,
    sample_every=3.0,
    slots=16,
    drain_cap=15.0,
)
QUICK = HttpPlan(
    quick=True,
    connections=8,
    peak_seconds=3.0,
    warmup=0.5,
    paced_seconds=3.0,
    paced_connections=16,
    direct_seconds=3.0,
    retention=2.0,
    long_run_seconds=12.0,
    long_run_rate=40.0,
    long_run_connections=8,
    sample_every=1.0,
    slots=8,
    drain_cap=5.0,
)


def notes(plan: HttpPlan) -> list[str]:
    return [
        f"Closed loops: {plan.connections} keep-alive connections (threads with http.client, "
        f"one body encoded once), {plan.warmup:g}s warm-up not counted, then "
        f"{plan.peak_seconds:g}s counted (direct: {plan.direct_seconds:g}s). Submissions carry "
        "no Idempotency-Key (one MySQL round trip less per request).",
        f"Auth on: one API key (tenant {TENANT!r}, limit {RATE_LIMIT:,}/min, never reached): "
        "each request is a key check (cached 5 s per process), one rate-limit "
        "INSERT ... ON DUPLICATE KEY UPDATE in MySQL and a buffered request-log row. Auth off: "
        "the same frontends restarted with ZKQ_AUTH=off, requests sent with no key at all.",
        f"Direct: {plan.connections} threads share one coordinator.client.Client (one ZooKeeper "
        "session, as one frontend process does), each calling submit() for one job at a time.",
        f"Latency: an open loop of {plan.paced_connections} connections paced at half the "
        "auth-on peak; latency counts from each submission's due time, so a stack or "
        "generator that falls behind shows it (no coordinated omission).",
        f"Coordinators run with --retention {plan.retention:g} for the whole run: the leader "
        "archives and prunes finished jobs throughout, the HTTP sections included. "
        f"{plan.workers} workers x {plan.slots} slots run noop jobs throughout, so queues drain.",
        "Backlog at end: jobs pending or held by workers when a loop stopped; drained in: "
        f"how long the workers then took to bring it to zero (at most {plan.drain_cap:g}s).",
        "The znode count creeps up in a run this short while the data size stays flat: each "
        "second of load leaves an emptied job tick and pending tick, znodes without data, "
        f"which the leader deletes {BUCKET_GRACE:g}s and {EMPTY_SHARD_GRACE:g}s after their "
        "time (so a late submitter never finds its bucket gone); they stop accumulating "
        "after those graces, longer than this run.",
        "HAProxy writes a log line per request (to its log file), as in `zkq dev`.",
        "Everything shares the machine's CPUs: three ZooKeeper JVMs, MariaDB, the services, "
        "HAProxy and the load generator itself; figures compare paths within one run.",
    ]


def run(plan: HttpPlan, progress: Progress, state_dir: Path | None = None) -> HttpBenchResults:
    started = time.monotonic()
    results = HttpBenchResults(
        meta={
            "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "quick": plan.quick,
            "plan": asdict(plan),
            "zk_nodes": plan.zk_nodes,
            "coordinators": plan.coordinators,
            "workers": plan.workers,
            "slots": plan.slots,
            "frontends": plan.frontends,
            "retention": plan.retention,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_average(),
            "state_dir": str(state_dir) if state_dir is not None else None,
        }
    )
    with bench_cluster(state_dir, progress, "zkq-bench-http-") as (cluster, _base):
        progress(
            f"starting {plan.zk_nodes} ZooKeeper nodes, MariaDB, {plan.coordinators} "
            f"coordinators, {plan.workers} workers, {plan.frontends} frontends and HAProxy"
        )
        cluster.up(
            workers=plan.workers,
            coordinators=plan.coordinators,
            worker_concurrency=plan.slots,
            tick_ms=plan.tick_ms,
            zk_size=plan.zk_nodes,
            root=ROOT,
            coordinator_args=["--retention", f"{plan.retention:g}"],
            env=SERVICE_ENV,
            timeout=120.0,
            mysql=True,
            frontends=plan.frontends,
        )
        results.meta["connect"] = cluster.connect_string
        pool = ConnectionPool(MySQLSettings.from_url(cluster.mysql_url), max_size=2)
        config = cluster.config("frontend")  # submits and reads as a frontend does
        client = Client(config, connect_timeout=30.0)
        client.start()
        try:
            _sections(plan, cluster, client, pool, results, progress)
        finally:
            client.close()
            pool.close()
    results.meta["load_after"] = load_average()
    results.meta["duration_s"] = round(time.monotonic() - started, 1)
    results.meta["notes"] = notes(plan)
    return results


def _sections(
    plan: HttpPlan,
    cluster: DevCluster,
    client: Client,
    pool: ConnectionPool,
    results: HttpBenchResults,
    progress: Progress,
) -> None:
    _key_id, secret = KeyStore(pool).create(
        TENANT, "submit,read,admin", name="zkq bench http", rate_limit=RATE_LIMIT
    )
    url = cluster.haproxy_url
    with_key: SubmitterFactory = partial(HttpSubmitter, url, {"Authorization": f"Bearer {secret}"})
    results.memory = [FrontendMemory(m.name) for m in cluster.frontends]
    _read_memory(cluster, results.memory, IDLE)

    if plan.long_run_seconds > 0:
        interval = prune_interval(plan.retention)
        progress(
            f"long run: {plan.long_run_rate:g} jobs/s for {plan.long_run_seconds:g}s, "
            f"pruning after {plan.retention:g}s; sampling every {plan.sample_every:g}s"
        )
        results.retention = long_run(
            with_key,
            _ensemble(cluster),
            client,
            pool,
            retention=plan.retention,
            prune_interval=interval,
            rate=plan.long_run_rate,
            seconds=plan.long_run_seconds,
            connections=plan.long_run_connections,
            sample_every=plan.sample_every,
            progress=progress,
        )
        _read_memory(cluster, results.memory, AFTER_LONG_RUN)
        wait_drained(client, plan.drain_cap)

    progress(f"HTTP, auth on: {plan.connections} connections for {plan.peak_seconds:g}s")
    peak = _closed(plan, client, AUTH_ON, "HAProxy -> frontends", with_key, plan.peak_seconds)
    results.throughput.append(peak)

    if peak.per_s > 0:
        rate = peak.per_s / 2
        progress(f"latency: paced at {rate:.0f} jobs/s for {plan.paced_seconds:g}s")
        tally = open_loop(with_key, rate, plan.paced_seconds, plan.paced_connections)
        results.latency = LatencyRow(
            peak=peak.per_s,
            target_rate=rate,
            seconds=plan.paced_seconds,
            connections=plan.paced_connections,
            ok=tally.ok,
            errors=dict(tally.errors),
            latency=Latencies.of(tally.latencies_ms),
        )
    _read_memory(cluster, results.memory, AFTER_LOAD)
    wait_drained(client, plan.drain_cap)

    progress("restarting the frontends with ZKQ_AUTH=off")
    restart_frontends(cluster, {"ZKQ_AUTH": "off"})
    no_key: SubmitterFactory = partial(HttpSubmitter, url, {})
    _check_auth_off(url)
    progress(f"HTTP, auth off: {plan.connections} connections for {plan.peak_seconds:g}s")
    results.throughput.append(
        _closed(plan, client, AUTH_OFF, "HAProxy -> frontends", no_key, plan.peak_seconds)
    )

    progress(f"direct: {plan.connections} threads for {plan.direct_seconds:g}s")
    direct: SubmitterFactory = partial(DirectSubmitter, client)
    results.throughput.append(
        _closed(plan, client, DIRECT, "Client.submit -> ZooKeeper", direct, plan.direct_seconds)
    )


def _closed(
    plan: HttpPlan,
    client: Client,
    name: str,
    path: str,
    factory: SubmitterFactory,
    seconds: float,
) -> ThroughputRow:
    tally: Tally = closed_loop(factory, plan.connections, seconds, plan.warmup)
    end_backlog: int | None
    try:
        end_backlog = backlog(client)
    except ZkqError:
        end_backlog = None
    drained = wait_drained(client, plan.drain_cap) if end_backlog else 0.0
    return ThroughputRow(
        name=name,
        path=path,
        connections=plan.connections,
        seconds=seconds,
        ok=tally.ok,
        errors=dict(tally.errors),
        latency=Latencies.of(tally.latencies_ms),
        backlog_end=end_backlog,
        drain_seconds=drained,
    )


def restart_frontends(cluster: DevCluster, env: dict[str, str], timeout: float = 60.0) -> None:
    """Stop every frontend (together, gracefully) and start each again on its port with
    ``env`` added; wait until each is ready and HAProxy has them all up again."""
    old = list(cluster.frontends)
    processes.stop_all([m.process for m in old], timeout=15.0)
    for member in old:
        http_side.restart_frontend(cluster, member.name, env=env)
    fresh = cluster.frontends
    http_side.wait_ready(fresh, timeout)
    proxy = cluster.members_of(http_side.HAPROXY)[0]
    wait_until(
        lambda: sum(s == "UP" for s in http_side.haproxy_servers(proxy).values()) == len(fresh),
        timeout,
        interval=0.1,
        what=f"HAProxy to see {len(fresh)} restarted frontend(s) up",
        ignore=(OSError, DevClusterError),
    )


def _check_auth_off(url: str) -> None:
    """One submission with no key must be accepted, by each frontend in turn: otherwise
    the frontends did not take ZKQ_AUTH=off and the auth-off row would measure 401s."""
    submitter = HttpSubmitter(url, {})
    try:
        for _ in range(4):  # round robin: both frontends, twice
            error = submitter.send()
            if error is not None:
                raise StartupFailed(
                    f"a submission without a key got {error} after the restart with "
                    "ZKQ_AUTH=off: the frontends did not turn authentication off"
                )
    finally:
        submitter.close()


def _read_memory(cluster: DevCluster, memory: list[FrontendMemory], moment: str) -> None:
    """RSS of each frontend's gunicorn master and of its children (the workers)."""
    for entry in memory:
        member = cluster.member(entry.name)
        try:
            master = psutil.Process(member.process.pid)
            found = [("master", master)] + [
                ("worker", child) for child in master.children(recursive=True)
            ]
        except psutil.Error:
            continue
        for role, proc in found:
            record = next((p for p in entry.processes if p.pid == proc.pid), None)
            if record is None:
                record = ProcessMemory(role, proc.pid)
                entry.processes.append(record)
            try:
                record.rss[moment] = int(proc.memory_info().rss)
            except psutil.Error:
                record.rss[moment] = None


def _ensemble(cluster: DevCluster) -> ZooKeeperEnsemble:
    ensemble = cluster.ensemble
    if ensemble is None:
        raise DevClusterError("the bench cluster has no ZooKeeper ensemble")
    return ensemble

"""One soak run: a cluster of its own, the load, the faults, the accounting."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soak import partitions, replicas
from soak.accounting import account, drain
from soak.app import RECORD_DIR_ENV
from soak.executions import count_executions, read_executions
from soak.faults import KINDS, Chaos, start_worker
from soak.load import Load
from soak.report import Report, longest_stall
from soak.stack import soak_cluster
from zkq.coordinator.acl import Role
from zkq.coordinator.client import Client
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.cluster import DevCluster
from zkq.frontend.keys import KeyStore

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    jobs: int
    rate: float  # submissions a second
    min_rounds: int  # rounds of every fault, at least (and on while the load runs)
    max_rounds: int
    handler_ms: int = 300
    session_ms: int = 4000
    workers: int = 2  # besides the one that is partitioned
    drain_timeout: float = 300.0
    zk_partition: bool = True


FULL = Plan(jobs=10_000, rate=40.0, min_rounds=2, max_rounds=100)
QUICK = Plan(jobs=1_000, rate=20.0, min_rounds=1, max_rounds=1, drain_timeout=120.0)


def run(plan: Plan, progress: Progress, state_dir: Path | None = None) -> Report:
    with soak_cluster(state_dir, progress) as (cluster, base, keep):
        records = base / "executions"
        records.mkdir(parents=True, exist_ok=True)
        checkout = str(Path(__file__).resolve().parents[1])
        progress(f"starting the cluster in {base}")
        cluster.up(
            workers=0,
            coordinators=2,
            worker_app="soak.app",
            worker_concurrency=4,
            tick_ms=200,
            session_timeout_ms=plan.session_ms,
            mysql=True,
            frontends=2,
            env={RECORD_DIR_ENV: str(records), "PYTHONPATH": checkout},
            timeout=120.0,
            progress=progress,
        )
        zk_relays = None
        if plan.zk_partition:
            progress("putting zk1's peer traffic behind relays (restarting the ensemble)")
            zk_relays = partitions.zookeeper_relays(cluster)
        worker_relays, relayed = partitions.worker_relays(cluster)
        try:
            for _ in range(plan.workers):
                start_worker(cluster)
            cut_off = start_worker(cluster, ["--zk", relayed])
            cluster.wait_registered(plan.workers + 1, 2, timeout=60)
            pool = ConnectionPool(MySQLSettings.from_url(cluster.mysql_url), max_size=1)
            try:
                # no rate limit worth the name: the soak measures faults, not throttling
                _, secret = KeyStore(pool).create(
                    "soak", "submit,read", f"soak-{uuid.uuid4().hex[:6]}", 1_000_000
                )
            finally:
                pool.close()
            # the soak watches as the coordinator: it reads the election and every record
            client = Client.connect(cluster.connect_string, cluster.root, **observer(cluster))
            try:
                chaos = Chaos(
                    cluster,
                    client,
                    records,
                    plan.session_ms / 1000,
                    worker_relays,
                    cut_off,
                    zk_relays,
                    progress,
                )
                report = _soak(plan, progress, chaos, secret)
                # kept beside the logs, for reading the run against them afterwards
                (base / "report.json").write_text(json.dumps(report.to_json(), indent=2))
                keep["keep"] = keep["keep"] or not report.ok
                return report
            finally:
                client.close()
        finally:
            worker_relays.close()
            if zk_relays is not None:
                zk_relays.close()


def _soak(plan: Plan, progress: Progress, chaos: Chaos, secret: str) -> Report:
    cluster, client, records = chaos.cluster, chaos.client, chaos.record_dir
    load = Load(
        cluster.haproxy_url,
        secret,
        plan.jobs,
        plan.rate,
        run_id=uuid.uuid4().hex[:8],
        handler_ms=plan.handler_ms,
    )
    # once every submission is answered and every accepted job has run, a fault has no
    # jobs to wait for
    chaos.idle = lambda: load.done and count_executions(records) >= len(load.result.accepted)
    started = time.monotonic()
    progress(f"submitting {plan.jobs} jobs at {plan.rate:g}/s while faults run")
    load.start()
    try:
        rounds = 0
        while rounds < plan.max_rounds and (rounds < plan.min_rounds or not load.done):
            rounds += 1
            progress(f"round {rounds} of faults ({load.submitted} submitted so far)")
            chaos.run_round(KINDS, lambda: True)
        load.join()
    finally:
        load.stop()
        load.join(30)
    progress(f"faults over; {len(load.result.accepted)} accepted; draining")
    jobs = drain(client, load.result.accepted, plan.drain_timeout, progress)
    executions = read_executions(records)
    accounts = account(load.result.accepted, jobs, executions, chaos.log)
    assert cluster.ensemble is not None
    progress("comparing the ZooKeeper nodes' records of every accepted job")
    accounts.disagreements = replicas.compare(
        cluster.ensemble, cluster.root, load.result.accepted, observer(cluster)
    )
    # a fault's effects last up to a session timeout (and an election) beyond it
    stall = longest_stall(load.result, jobs, chaos.log, reach=2 * plan.session_ms / 1000)
    took = time.monotonic() - started
    return Report(plan.jobs, took, load.result, accounts, stall, chaos.log.faults)


def observer(cluster: DevCluster) -> dict[str, Any]:
    """The ZooKeeper settings the soak reads with: the coordinator's credential, which
    may read everything (the cluster runs with ACLs, as `zkq dev up` starts it)."""
    return cluster.zk_options(Role.COORDINATOR)

"""``zkq bench timings``: how fast the cluster notices things, as figures.

The tests assert that each of these happens, in order, within a generous deadline derived
from the configured timeouts; how long it actually takes depends on the machine and its
load, so it is measured and printed here instead, next to the timeout that bounds it:

* long-poll lag: from a job's ``finished_at`` to a waiting ``GET ?wait=`` answering;
* leader handover after ``kill -9`` of the leading coordinator (its session must expire);
* requeue of a ``kill -9``'d worker's running job to another worker;
* HAProxy marking a killed frontend DOWN (``fall`` failed checks ``inter`` apart).
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from benchmarks.stack import bench_cluster, load_average
from zkq.coordinator.client import Client
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import NoNode
from zkq.dev.cluster import DevCluster
from zkq.dev.frontends import HaproxyOptions, haproxy_servers
from zkq.dev.waiting import wait_until
from zkq.frontend.keys import KeyStore

Progress = Callable[[str], None]

#: how long any one event may take before the bench gives up on it (not a target)
GIVE_UP = 120.0
#: a long-poll's wait: far longer than the job, so an answer before it is the event's
LONG_POLL_WAIT = 30


@dataclass(frozen=True)
class TimingsPlan:
    polls: int = 50  # jobs whose completion a long-poll waits for
    rounds: int = 3  # kill -9 rounds of each fault
    session_timeout_ms: int = 3000
    tick_ms: int = 200
    job_seconds: float = 0.2  # how long each long-polled job runs
    quick: bool = False


FULL = TimingsPlan()
QUICK = TimingsPlan(polls=5, rounds=1, quick=True)


@dataclass
class Figure:
    """Seconds per sample of one measurement, and the configured timeout that bounds it."""

    name: str
    bound: str
    samples: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)
        if not ordered:
            return {}

        def rank(q: float) -> float:  # nearest rank: a sample that happened
            return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

        return {
            "n": len(ordered),
            "p50": statistics.median(ordered),
            "p99": rank(0.99),
            "max": ordered[-1],
        }


@dataclass
class TimingsResults:
    meta: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)


def run(plan: TimingsPlan, progress: Progress, state_dir: Path | None = None) -> TimingsResults:
    checks = HaproxyOptions()
    results = TimingsResults(
        meta={
            "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "plan": asdict(plan),
            "session_timeout_s": plan.session_timeout_ms / 1000,
            "tick_s": plan.tick_ms / 1000,
            "haproxy_check_s": checks.check_inter_ms / 1000,
            "haproxy_fall": checks.fall,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_average(),
        }
    )
    session = plan.session_timeout_ms / 1000
    lag = Figure("long-poll lag after finished_at", f"job of {plan.job_seconds:g} s")
    handover = Figure("leader handover after kill -9", f"session timeout {session:g} s")
    requeue = Figure("requeue of a killed worker's job", f"session timeout {session:g} s")
    down = Figure(
        "HAProxy marks a killed frontend DOWN",
        f"checks every {checks.check_inter_ms / 1000:g} s, fall {checks.fall}",
    )
    results.figures = [lag, handover, requeue, down]
    with bench_cluster(state_dir, progress, "zkq-bench-timings-") as (cluster, _base):
        progress("starting 3 ZooKeeper nodes, MariaDB, 2 coordinators, 2 workers, 2 frontends")
        cluster.up(
            workers=2,
            coordinators=2,
            worker_concurrency=4,
            tick_ms=plan.tick_ms,
            session_timeout_ms=plan.session_timeout_ms,
            timeout=GIVE_UP,
            mysql=True,
            frontends=2,
        )
        results.meta["connect"] = cluster.connect_string
        client = Client(cluster.config("frontend"), connect_timeout=30.0)
        client.start()
        try:
            progress(f"long-polling {plan.polls} jobs")
            lag.samples = long_poll_lags(cluster, plan)
            for n in range(plan.rounds):
                progress(f"kill -9 round {n + 1} of {plan.rounds}")
                handover.samples.append(leader_handover(cluster, client))
                requeue.samples.append(worker_requeue(cluster, client))
                down.samples.append(frontend_down(cluster))
        finally:
            client.close()
    results.meta["load_after"] = load_average()
    return results


def long_poll_lags(cluster: DevCluster, plan: TimingsPlan) -> list[float]:
    pool = ConnectionPool(MySQLSettings.from_url(cluster.mysql_url), max_size=1)
    try:
        _id, secret = KeyStore(pool).create("bench", "submit,read", name="zkq bench timings")
    finally:
        pool.close()
    headers = {"Authorization": f"Bearer {secret}"}
    lags = []
    with requests.Session() as http:
        for _ in range(plan.polls):
            r = http.post(
                f"{cluster.haproxy_url}/v1/jobs",
                json={"type": "sleep", "payload": plan.job_seconds},
                headers=headers,
                timeout=30,
            )
            r.raise_for_status()
            r = http.get(
                f"{cluster.haproxy_url}/v1/jobs/{r.json()['id']}",
                params={"wait": LONG_POLL_WAIT},
                headers=headers,
                timeout=LONG_POLL_WAIT + 30,
            )
            answered = time.time()
            body = r.json()
            if body.get("state") != "succeeded":
                raise TimeoutError(f"a long-polled job did not succeed: {body}")
            lags.append(answered - body["finished_at"])
    return lags


def leader_pid(client: Client) -> int | None:
    """The pid of the leading coordinator: its election node's data ends in it."""
    path = Layout(client.config.zk.root).election
    for node in sorted(client.session.get_children(path), key=lambda n: n[-10:]):
        try:
            return int(client.session.get(f"{path}/{node}")[0].decode().rsplit("-", 1)[1])
        except NoNode:
            continue  # that contender left between the listing and the read
    return None


def job_when(client: Client, job_id: str, until: Callable[[Job], bool], what: str) -> Job:
    """The job, read until ``until(job)`` holds (or :data:`GIVE_UP` passes)."""
    seen: list[Job] = []

    def check() -> bool:
        seen[:] = [client.get(job_id)]
        return until(seen[0])

    wait_until(check, GIVE_UP, interval=0.02, what=f"job {job_id} {what}")
    return seen[0]


def kill_9(cluster: DevCluster, pid: int) -> None:
    """kill -9 the member with that pid, then forget it (a dead member listed fails the
    launcher's readiness checks): the next round starts a fresh one."""
    name = next(m.name for m in cluster.members if m.process.pid == pid and m.process.alive())
    cluster.kill_member(name)
    cluster.stop_member(name)  # sweeps any child left behind, and forgets it


def leader_handover(cluster: DevCluster, client: Client) -> float:
    """Seconds from kill -9 of the leader until a job submitted then starts to run."""
    old = leader_pid(client)
    if old is None:
        raise TimeoutError("no coordinator leads")
    killed_at = time.time()
    kill_9(cluster, old)
    job = client.submit("echo", "after the handover")
    done = job_when(client, job.id, lambda j: j.state == JobState.SUCCEEDED, "to succeed")
    cluster.add_coordinator()  # back to two, for the next round
    cluster.wait_registered(len(cluster.workers), 2, GIVE_UP)
    return done.history[0].started_at - killed_at


def worker_requeue(cluster: DevCluster, client: Client) -> float:
    """Seconds from kill -9 of a worker until its running job is assigned to another."""
    job = client.submit("sleep", 3600, max_attempts=2)
    running = job_when(client, job.id, lambda j: j.state == JobState.RUNNING, "to run")
    gone = running.worker
    match = re.match(r"^.*-(\d+)-[0-9a-f]{6}$", gone or "")  # <host>-<pid>-<random>
    if match is None:
        raise TimeoutError(f"cannot tell the pid of worker {gone}")
    killed_at = time.monotonic()
    kill_9(cluster, int(match.group(1)))
    wait_until(
        lambda: client.get(job.id).worker not in (None, gone),
        GIVE_UP,
        interval=0.02,
        what="the killed worker's job to move",
    )
    took = time.monotonic() - killed_at
    client.cancel(job.id)
    cluster.add_worker()  # back to two, for the next round
    cluster.wait_registered(2, 2, GIVE_UP)
    return took


def frontend_down(cluster: DevCluster) -> float:
    """Seconds from kill -9 of a frontend until HAProxy's stats say DOWN."""
    proxy = cluster.member("haproxy")
    killed_at = time.monotonic()
    cluster.kill_frontend("frontend-1")
    wait_until(
        lambda: haproxy_servers(proxy).get("frontend-1", "").startswith("DOWN"),
        GIVE_UP,
        interval=0.02,
        what="HAProxy to see frontend-1 DOWN",
    )
    took = time.monotonic() - killed_at
    cluster.start_frontend("frontend-1", timeout=GIVE_UP)
    wait_until(
        lambda: haproxy_servers(proxy).get("frontend-1", "").startswith("UP"),
        GIVE_UP,
        what="HAProxy to see frontend-1 UP again",
    )
    return took


def to_json(results: TimingsResults) -> dict[str, Any]:
    return {
        "meta": results.meta,
        "figures": [
            {"name": f.name, "bound": f.bound, "samples": f.samples, **f.summary()}
            for f in results.figures
        ],
    }


def render(results: TimingsResults) -> str:
    meta = results.meta
    lines = [
        f"zkq bench timings ({meta['when']}; {meta['cpus']} CPUs; load before "
        f"{meta['load_before']}, after {meta.get('load_after', '?')})",
        "",
        f"{'what':<40} {'n':>3} {'p50':>9} {'p99':>9} {'max':>9}   configured",
    ]
    for figure in results.figures:
        s = figure.summary()
        if not s:
            lines.append(f"{figure.name:<40} {0:>3} {'-':>9} {'-':>9} {'-':>9}   {figure.bound}")
            continue
        cells = " ".join(f"{_seconds(s[k]):>9}" for k in ("p50", "p99", "max"))
        lines.append(f"{figure.name:<40} {int(s['n']):>3} {cells}   ({figure.bound})")
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"

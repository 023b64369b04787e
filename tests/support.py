"""What the tests share: start a cluster, find its processes, run the CLI against it, read
its metrics; a frontend app with nothing behind it; an ensemble of one's own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from click.testing import CliRunner, Result
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from zkq.cli import main
from zkq.coordinator.client import Client
from zkq.coordinator.job import Job
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import NoNode
from zkq.dev import DevCluster, local_cluster
from zkq.dev.owner import OWNERS_ENV
from zkq.dev.ports import free_port
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.frontend.app import create_app
from zkq.frontend.resources import of

#: what services ask of ZooKeeper in tests: short, so expiry tests are quick, and not so
#: short that a loaded two-core machine expires sessions by accident
SESSION_MS = 3000
APP = "tests.apps.all"
#: the metric families every frontend's ``/metrics`` has from its first request on
FRONTEND_FAMILIES = {
    "zkq_http_requests",
    "zkq_http_request_duration_seconds",
    "zkq_submissions",
    "zkq_http_long_polls_in_progress",
    "zkq_request_log_pending",
    "zkq_request_log_dropped",
}


@contextmanager
def running_cluster(state_dir: Path, **kwargs: Any) -> Iterator[DevCluster]:
    options: dict[str, Any] = {
        "workers": 2,
        "coordinators": 2,
        "worker_app": APP,
        "worker_concurrency": 4,
        "tick_ms": 200,
        "session_timeout_ms": SESSION_MS,
        "timeout": 90.0,
    }
    options.update(kwargs)
    with local_cluster(state_dir, **options) as cluster:
        yield cluster


@contextmanager
def client_of(cluster: DevCluster) -> Iterator[Client]:
    # a client submits, reads and cancels with the frontend's ZooKeeper credential
    client = Client(cluster.config("frontend"))
    client.start()
    try:
        yield client
    finally:
        client.close()


def wait_for_job(client: Client, job_id: str, until: Callable[[Job], bool], timeout: float) -> Job:
    """Poll a job until ``until(job)``; returns the job, or fails with its last state."""
    last: list[Job] = []

    def check() -> bool:
        last[:] = [client.get(job_id)]
        return until(last[0])

    try:
        wait_until(check, timeout, interval=0.02, what=f"job {job_id}")
    except TimeoutError:
        raise AssertionError(
            f"job {job_id} never got there; last seen: {last[0] if last else None}"
        ) from None
    return last[0]


def worker_pid(worker_id: str) -> int:
    """Worker ids are ``<host>-<pid>-<random>``."""
    match = re.match(r"^.*-(\d+)-[0-9a-f]{6}$", worker_id)
    assert match, worker_id
    return int(match.group(1))


def member_by_pid(cluster: DevCluster, pid: int) -> str:
    for member in cluster.members:
        if member.process.pid == pid:
            return member.name
    raise AssertionError(f"no member has pid {pid}")


def leader_name(client: Client) -> str | None:
    """The election identifier of the current leader (the lowest sequence node)."""
    zk = client.session
    path = Layout(client.config.zk.root).election
    for node in sorted(zk.get_children(path), key=lambda n: n[-10:]):
        try:
            return zk.get(f"{path}/{node}")[0].decode()
        except NoNode:
            continue  # that contender left between the listing and the read
    return None


def log_text(cluster: DevCluster, name: str) -> str:
    return cluster.member(name).process.log_path.read_text(errors="replace")


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)


def now() -> float:
    return time.time()


@contextmanager
def offline_app(**config: Any) -> Iterator[Flask]:
    """A frontend app with nothing behind it: ZooKeeper at a port where nothing listens (it
    gives up waiting for it after 0.2 s), no MySQL at all; ``config`` adds to that.  Its
    resources are stopped at the end."""
    app = create_app(
        {"ZK_HOSTS": f"127.0.0.1:{free_port()}", "ZK_DISCONNECTED_WAIT": 0.2, **config}
    )
    try:
        yield app
    finally:
        of(app).stop()


@contextmanager
def own_ensemble(base_dir: Path, size: int = 3) -> Iterator[ZooKeeperEnsemble]:
    """An ensemble a test may stop, kill or partition (the session's ``ensemble`` is shared),
    with the same fast timings: tick 200 ms, sessions between 0.4 s and 10 s.  Every node
    is stopped at the end, whatever the test did to them."""
    zk = ZooKeeperEnsemble(
        base_dir, size=size, tick_ms=200, min_session_ms=400, max_session_ms=10_000
    )
    try:
        zk.start(timeout=60)
        yield zk
    finally:
        zk.stop()


def zkq_cli(
    cluster: DevCluster, *args: str, code: int = 0, env: dict[str, str] | None = None
) -> Result:
    """``zkq *args`` in this process, as an operator who acts runs it: the coordinator's
    ZooKeeper credential, ``env`` on top.  Fails unless it exits with ``code``."""
    base = {
        "ZKQ_ZK_HOSTS": cluster.connect_string,
        "ZKQ_ROOT": cluster.root,
        **cluster.zk_env("coordinator"),
    }
    result = CliRunner(env={**base, **(env or {})}).invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result


#: the ``zkq`` command installed beside this interpreter: what a user types
ZKQ = Path(sys.executable).with_name("zkq")


def user_env(**variables: str) -> dict[str, str]:
    """This process's environment as a user who configured nothing has it, then
    ``variables``: no ``ZKQ_`` setting (a developer's shell, or what ``zkq dev env``
    exported, must not leak in) but the test run's owner mark, so that whatever a command
    starts goes with the run (tests/teardown.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZKQ_") or k == OWNERS_ENV}
    return {**env, **variables}


def operator_env(
    cluster: DevCluster, role: str = "coordinator", **variables: str
) -> dict[str, str]:
    """:func:`user_env` pointed at ``cluster``, with ``role``'s ZooKeeper credential (the
    coordinator's: an operator who acts), then ``variables``."""
    return user_env(
        ZKQ_ZK_HOSTS=cluster.connect_string,
        ZKQ_ROOT=cluster.root,
        **cluster.zk_env(role),
        **variables,
    )


def run_zkq(
    *args: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    code: int | None = 0,
    timeout: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """The installed ``zkq *args`` in a process of its own, as a user runs it, without a
    terminal (stdin is /dev/null).  Fails unless it exits with ``code`` (None: any)."""
    done = subprocess.run(
        [str(ZKQ), *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if code is not None:
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return done


def metric_families(text: str) -> dict[str, Any]:
    """A Prometheus text page, by family name."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def unique_type() -> str:
    """A job type of its own; served by no worker, so its jobs stay pending."""
    return f"t-{uuid.uuid4().hex[:10]}"


def processes_naming(*marks: str) -> list[int]:
    """The pids of processes with any of ``marks`` in an argument: a run's state directory
    or connect string names every process it started, so none should remain after it."""
    return [
        p.info["pid"]
        for p in psutil.process_iter(["pid", "cmdline"])
        if any(mark in arg for arg in p.info["cmdline"] or () for mark in marks)
    ]

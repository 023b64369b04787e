"""Every zkq process ends within a bound on SIGTERM, whatever ZooKeeper's state.

Each kind of process (coordinator, worker, frontend, a CLI command) is started the way
``zkq dev`` starts it (``python -m zkq ...``, :func:`zkq.dev.processes.start`), connected to
a one-node ensemble of its own through a :class:`CuttingProxy`; then ZooKeeper goes away,
either stopped (connections refused) or partitioned (the proxy accepts and forwards
nothing, so requests wait for answers that never come), the process gets SIGTERM and must
exit within :data:`BOUND`.  Once ZooKeeper is back, every job submitted before the fault
ends: nothing was lost or wedged by the way the process left.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import requests

from tests.mysql_support import fresh_database
from tests.support import own_ensemble
from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.job import JobState
from zkq.coordinator.paths import Layout
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.ports import free_port
from zkq.dev.processes import ManagedProcess, ProcessSpec, start
from zkq.dev.services import zkq_argv
from zkq.dev.tcpproxy import CuttingProxy
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

#: how long a process may take to exit on SIGTERM (issue 8: "e.g. 10 s")
BOUND = 10.0
SESSION = "3"  # seconds: what the services ask of ZooKeeper


@pytest.fixture(scope="module")
def lone_zk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """One node of our own: these tests stop it."""
    with own_ensemble(tmp_path_factory.mktemp("zk-stop"), size=1) as zk:
        yield zk


class Rig:
    """One test's root, proxy and processes; stops every process it started."""

    def __init__(self, zk: ZooKeeperEnsemble, proxy: CuttingProxy, logs: Path) -> None:
        self.zk = zk
        self.proxy = proxy
        self.logs = logs
        self.root = f"/stop-{uuid.uuid4().hex[:8]}"
        self.layout = Layout(self.root)
        self.processes: list[ManagedProcess] = []
        self.client = Client(ClusterConfig.load(hosts=zk.connect_string, root=self.root))
        self.client.start()

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> ManagedProcess:
        process = start(
            ProcessSpec(
                name,
                argv,
                self.logs / f"{name}.log",
                env={"ZKQ_SESSION_TIMEOUT": SESSION, **(env or {})},
            )
        )
        self.processes.append(process)
        return process

    def service(self, command: str, *args: str, direct: bool = False) -> list[str]:
        connect = self.zk.connect_string if direct else f"127.0.0.1:{self.proxy.port}"
        return zkq_argv(command, connect, self.root, *args)

    def children(self, path: str) -> list[str]:
        try:
            return self.client.session.get_children(path)
        except Exception:
            return []

    def close(self) -> None:
        for process in self.processes:
            process.stop(timeout=5)
        self.client.close()


@contextmanager
def zookeeper_away(fault: str, rig: Rig) -> Iterator[None]:
    if fault == "stopped":
        rig.zk.stop_node(0)
        try:
            yield
        finally:
            rig.zk.start_node(0, timeout=60)
            # the test's own client reconnects to the restarted node before it reads again
            wait_until(rig.client.session.connected.is_set, 30, what="the test client")
    else:
        rig.proxy.partition()
        try:
            yield
        finally:
            rig.proxy.heal()


def sigterm_and_time(process: ManagedProcess) -> float:
    began = time.monotonic()
    process.signal(15)
    try:
        process.wait(BOUND)
    except Exception as exc:
        raise AssertionError(
            f"{process.name} still running {BOUND:g}s after SIGTERM:\n{process.log_tail(30)}"
        ) from exc
    return time.monotonic() - began


def everything_ends(rig: Rig, job_ids: list[str]) -> None:
    """With ZooKeeper back and a coordinator and worker of our own, every job succeeds."""
    rig.start("coordinator-after", rig.service("coordinator", direct=True))
    rig.start("worker-after", rig.service("worker", "--concurrency", "4", direct=True))
    for job_id in job_ids:
        job = rig.client.wait(job_id, 60)
        assert job.state == JobState.SUCCEEDED, job


@pytest.fixture
def rig(lone_zk: ZooKeeperEnsemble, tmp_path: Path) -> Iterator[Rig]:
    with ExitStack() as stack:
        proxy = stack.enter_context(CuttingProxy("127.0.0.1", lone_zk.client_port(0)))
        r = Rig(lone_zk, proxy, tmp_path)
        stack.callback(r.close)
        yield r


FAULTS = ["stopped", "partitioned"]


@pytest.mark.parametrize("fault", FAULTS)
def test_coordinator_leader_stops_in_time(
    rig: Rig, fault: str, mariadb: MariaDBServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # with MySQL, so the leader's pruner runs beside the dispatcher
    mysql = fresh_database(mariadb)
    leader = rig.start(
        "coordinator",
        rig.service("coordinator"),
        env={"ZKQ_MYSQL_URL": mysql.url, "ZKQ_RETENTION": "1"},
    )
    wait_until(lambda: rig.children(rig.layout.election), 30, what="the coordinator to lead")
    jobs = [rig.client.submit("noop").id for _ in range(3)]
    with zookeeper_away(fault, rig):
        took = sigterm_and_time(leader)
    with capsys.disabled():
        print(f"\ncoordinator, ZooKeeper {fault}: exited {took:.1f}s after SIGTERM")
    everything_ends(rig, jobs)


@pytest.mark.parametrize("fault", FAULTS)
def test_draining_worker_stops_in_time(
    rig: Rig, fault: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rig.start("coordinator", rig.service("coordinator", direct=True))
    worker = rig.start("worker", rig.service("worker", "--concurrency", "2"))
    wait_until(lambda: rig.children(rig.layout.workers), 30, what="the worker to register")
    # running when ZooKeeper goes: a drain would wait to record it
    slow = rig.client.submit("sleep", 2, max_attempts=3).id
    wait_until(lambda: rig.client.get(slow).state == JobState.RUNNING, 30, what="the job to start")
    with zookeeper_away(fault, rig):
        took = sigterm_and_time(worker)
    with capsys.disabled():
        print(f"\nworker (draining a job), ZooKeeper {fault}: exited {took:.1f}s after SIGTERM")
    everything_ends(rig, [slow])


@pytest.mark.parametrize("fault", FAULTS)
def test_frontend_stops_in_time(rig: Rig, fault: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    frontend = rig.start(
        "frontend", rig.service("frontend", "--bind", f"127.0.0.1:{port}", "--workers", "2")
    )

    def zookeeper_ready() -> bool:
        try:
            r = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
        except requests.RequestException:
            return False
        return bool(r.json().get("zookeeper"))

    wait_until(zookeeper_ready, 60, what="the frontend to reach ZooKeeper")
    jobs = [rig.client.submit("noop").id]
    with zookeeper_away(fault, rig):
        took = sigterm_and_time(frontend)
    with capsys.disabled():
        print(f"\nfrontend, ZooKeeper {fault}: exited {took:.1f}s after SIGTERM")
    assert not frontend.group_members(), "a gunicorn worker outlived its master"
    everything_ends(rig, jobs)


@pytest.mark.parametrize("fault", FAULTS)
def test_cli_command_stops_in_time(
    rig: Rig, fault: str, capsys: pytest.CaptureFixture[str]
) -> None:
    job_type = f"t{uuid.uuid4().hex[:6]}"
    cli = rig.start("cli", rig.service("submit", job_type, "--wait", "--wait-timeout", "600"))
    wait_until(lambda: rig.children(rig.layout.pending_type(job_type)), 30, what="the submission")
    with zookeeper_away(fault, rig):
        took = sigterm_and_time(cli)
    with capsys.disabled():
        print(f"\nzkq submit --wait, ZooKeeper {fault}: exited {took:.1f}s after SIGTERM")

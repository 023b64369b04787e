"""The local cluster launcher against real ZooKeeper JVMs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kazoo.client import KazooClient

from tests.support import own_ensemble
from zkq.dev.cli import dev
from zkq.dev.cluster import DevCluster
from zkq.dev.errors import AlreadyRunning, StartupFailed
from zkq.dev.fourletter import four_letter
from zkq.dev.processes import ManagedProcess, read_stat
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

#: a member with a child in its process group, to show that groups are swept
PARENT_WITH_CHILD = [
    sys.executable,
    "-c",
    "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)",
]


@pytest.fixture(name="own_ensemble")
def own_ensemble_fixture(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    """An ensemble this test may break (the session one is shared)."""
    with own_ensemble(tmp_path / "zk") as zk:
        yield zk


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DevCluster]:
    """A DevCluster (ZooKeeper only: the services are other tests' business) that is
    always brought down, whatever the test did to it."""
    dc = DevCluster(tmp_path / "dev")
    try:
        dc.up(workers=0, coordinators=0, tick_ms=200)
        yield dc
    finally:
        DevCluster(tmp_path / "dev").down(timeout=5)


def _modes(zk: ZooKeeperEnsemble) -> list[str]:
    return sorted(s["mode"] for s in zk.status())


def _not_alive(pid: int) -> bool:
    stat = read_stat(pid)
    return stat is None or stat.state == "Z"


def test_ensemble_has_one_leader_and_two_followers(ensemble: ZooKeeperEnsemble) -> None:
    statuses = ensemble.status()
    assert sorted(s["mode"] for s in statuses) == ["follower", "follower", "leader"]
    assert all(s["ruok"] and s["alive"] for s in statuses)
    leader = ensemble.leader_index()
    assert leader is not None and statuses[leader]["mode"] == "leader"
    assert statuses[leader]["synced_followers"] == 2
    hosts = ensemble.connect_string.split(",")
    assert hosts == [f"127.0.0.1:{ensemble.client_port(i)}" for i in range(3)]
    assert four_letter("127.0.0.1", ensemble.client_port(0), "ruok") == "imok"
    # The logging binding is on the classpath: log4j writes the node's own log file.
    assert "QuorumPeer" in (ensemble.nodes[0].log_path).read_text()


def test_single_node_runs_standalone(tmp_path: Path) -> None:
    zk = ZooKeeperEnsemble(tmp_path / "zk", size=1, tick_ms=200)
    try:
        zk.start(timeout=60)
        assert zk.node_status(0)["mode"] == "standalone"
        assert zk.leader_index() == 0
    finally:
        zk.stop()


def test_ensemble_serves_clients(ensemble: ZooKeeperEnsemble) -> None:
    client = KazooClient(hosts=ensemble.connect_string, timeout=5)
    client.start(timeout=10)
    try:
        client.ensure_path("/test_dev_launcher/serves")
        assert client.exists("/test_dev_launcher/serves")
    finally:
        client.stop()
        client.close()


def test_stopped_node_is_down_and_the_rest_keep_quorum(own_ensemble: ZooKeeperEnsemble) -> None:
    zk = own_ensemble
    leader = zk.leader_index()
    assert leader is not None
    zk.stop_node(leader)
    assert zk.node_status(leader)["mode"] == "down"
    zk.wait_ready(timeout=30)  # the two others elect a new leader
    assert _modes(zk) == ["down", "follower", "leader"]
    assert zk.leader_index() != leader

    # The quorum takes writes, through a connect string that still lists the dead node.
    client = KazooClient(hosts=zk.connect_string, timeout=5)
    client.start(timeout=10)
    try:
        client.create("/written-without-one-node", b"x")
    finally:
        client.stop()
        client.close()

    zk.start_node(leader, timeout=30)
    assert _modes(zk) == ["follower", "follower", "leader"]


def test_killed_node_is_down_and_minority_does_not_serve(
    own_ensemble: ZooKeeperEnsemble,
) -> None:
    zk = own_ensemble
    zk.kill_node(0)
    zk.kill_node(1)
    assert zk.node_status(0)["mode"] == zk.node_status(1)["mode"] == "down"
    # One node of three runs (it answers ruok once it has settled into looking for a
    # quorum; a probe during that switch may see its connection closed) but cannot serve.
    wait_until(
        lambda: (s := zk.node_status(2))["mode"] == "not serving" and s["ruok"] and s["alive"],
        30,
        what="the lone node to answer imok but not serve",
    )
    assert zk.leader_index() is None

    # Crashed nodes recover from their data directories and the quorum returns.
    zk.start_node(0, wait=False)
    zk.start_node(1, timeout=30)
    assert _modes(zk) == ["follower", "follower", "leader"]


def test_a_port_taken_before_start_gets_new_ports(tmp_path: Path) -> None:
    zk = ZooKeeperEnsemble(tmp_path / "zk", size=3, tick_ms=200)
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", zk.client_port(1)))
        squatter.listen()
        before = zk.connect_string
        zk.start(timeout=60)
        assert zk.connect_string != before
        assert _modes(zk) == ["follower", "follower", "leader"]
    finally:
        squatter.close()
        zk.stop()


def test_killed_member_is_reported_not_alive(cluster: DevCluster, tmp_path: Path) -> None:
    member = cluster.add_member("worker", ["sleep", "300"], name="sleeper")
    status = cluster.status()
    assert status["ok"]
    cluster.kill_member("sleeper")
    assert not member.process.alive()

    # Seen from a fresh process, through the state file, as `zkq dev status` sees it.
    result = CliRunner().invoke(dev, ["--state-dir", str(cluster.state_dir), "status", "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    (sleeper,) = [m for m in report["members"] if m["name"] == "sleeper"]
    assert sleeper["alive"] is False and sleeper["healthy"] is False
    assert sorted(n["mode"] for n in report["zookeeper"]) == ["follower", "follower", "leader"]

    human = CliRunner().invoke(dev, ["--state-dir", str(cluster.state_dir), "status"])
    assert human.exit_code == 1
    assert "sleeper" in human.output and "down" in human.output


def test_services_start_register_and_can_be_killed(tmp_path: Path) -> None:
    # The contract with `zkq coordinator` and `zkq worker`: the argv the launcher builds
    # starts them, and they register in ZooKeeper.
    dc = DevCluster(tmp_path / "dev")
    try:
        status = dc.up(workers=1, coordinators=1, tick_ms=200, session_timeout_ms=2000)
        assert status["ok"] and status["registered"] == {"workers": 1, "coordinators": 1}
        extra = dc.add_worker(concurrency=1)
        assert extra.argv[extra.argv.index("--concurrency") + 1] == "1"
        dc.wait_registered(workers=2, coordinators=1, timeout=30)
        extra.kill()
        extra.wait(10)
        # Its ephemeral registration goes when its session expires (2 s).
        wait_until(
            lambda: dc.status()["registered"] == {"workers": 1, "coordinators": 1},
            30,
            what="the killed worker's registration to expire",
        )
        assert not dc.status()["ok"]
        dc.stop_member(dc.workers[-1].name)  # forget the dead one: all is well again
        assert dc.status()["ok"]
    finally:
        dc.down(timeout=5)


def test_up_refuses_while_running(cluster: DevCluster) -> None:
    with pytest.raises(AlreadyRunning, match="already running"):
        DevCluster(cluster.state_dir).up(workers=0, coordinators=0, tick_ms=200)
    result = CliRunner().invoke(dev, ["--state-dir", str(cluster.state_dir), "up"])
    assert result.exit_code == 1
    assert "already running" in result.output


def test_down_from_another_process_leaves_no_pid_alive(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    dc = DevCluster(state_dir)
    try:
        dc.up(workers=0, coordinators=0, tick_ms=200)
        parent = dc.add_member("worker", PARENT_WITH_CHILD, name="parent").process
        dc.add_member("coordinator", ["sleep", "300"])
        dc.add_member("some-future-role", ["sleep", "300"])
        child = wait_until(
            lambda: [p for p in parent.group_members() if p != parent.pid],
            10,
            what="the member's child",
        )[0]
        dc.kill_member("parent")  # kill -9: its child lives on, orphaned
        assert not _not_alive(child)
        pids = [p.pid for p in dc._all_processes()] + [child]
        assert len(pids) == 7

        # A separate invocation, knowing only the state directory.
        cli = [sys.executable, "-c", "from zkq.dev.cli import dev; dev()"]
        out = subprocess.run(
            [*cli, "--state-dir", str(state_dir), "down", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        report = json.loads(out.stdout)
        assert report["already_dead"] == ["parent"]
        assert len(report["stopped"]) == 5  # three ZooKeeper nodes and two members
        # The ZooKeeper nodes and members are our children: alive() reaps them.
        assert not any(p.alive() for p in dc._all_processes())
        assert all(_not_alive(pid) for pid in pids)
        assert not (state_dir / "state.json").exists()
        # A second down is harmless.
        assert DevCluster(state_dir).down() == {"stopped": [], "already_dead": []}
    finally:
        dc.down(timeout=5)


def test_failed_up_leaves_nothing_behind(tmp_path: Path) -> None:
    dc = DevCluster(tmp_path / "dev")
    try:
        # A member that dies at once can never register: up fails, and cleans up.
        with pytest.raises(StartupFailed, match="exited"):
            dc.up(
                workers=1,
                coordinators=0,
                worker_app="no.such.module",
                tick_ms=200,
                worker_args=["--no-such-flag"],
                timeout=30,
            )
        assert not (tmp_path / "dev" / "state.json").exists()
        assert dc.ensemble is None and dc.members == []
    finally:
        dc.down(timeout=5)


def test_status_of_a_round_tripped_ensemble(ensemble: ZooKeeperEnsemble) -> None:
    copy = ZooKeeperEnsemble.from_dict(json.loads(json.dumps(ensemble.to_dict())))
    assert copy.connect_string == ensemble.connect_string
    assert [s["mode"] for s in copy.status()] == [s["mode"] for s in ensemble.status()]
    assert len(copy.nodes) == len(ensemble.nodes) == 3
    for node in copy.nodes:
        assert isinstance(node.process, ManagedProcess) and node.process.alive()

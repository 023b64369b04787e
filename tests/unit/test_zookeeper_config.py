"""ZooKeeper node configuration and four-letter-word parsing, without starting a JVM."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkq.dev.errors import ZooKeeperNotInstalled
from zkq.dev.fourletter import parse_mntr, parse_srvr
from zkq.dev.zookeeper import ZooKeeperEnsemble, find_classpath

SRVR = """Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC
Latency min/avg/max: 0/0.5/3
Received: 12
Sent: 11
Connections: 2
Outstanding: 0
Zxid: 0x100000002
Mode: leader
Node count: 7
Proposal sizes last/min/max: 48/48/92
"""


def _config(zk: ZooKeeperEnsemble, i: int) -> dict[str, str]:
    cfg = zk._write_config(zk.nodes[i])
    lines = [line for line in cfg.read_text().splitlines() if not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_three_node_config(tmp_path: Path) -> None:
    zk = ZooKeeperEnsemble(tmp_path, size=3, tick_ms=200, min_session_ms=400, max_session_ms=9000)
    cfg = _config(zk, 1)
    assert cfg["tickTime"] == "200"
    assert cfg["clientPort"] == str(zk.client_port(1))
    assert cfg["clientPortAddress"] == "127.0.0.1"
    assert cfg["minSessionTimeout"] == "400" and cfg["maxSessionTimeout"] == "9000"
    assert cfg["standaloneEnabled"] == "false"
    assert cfg["admin.enableServer"] == "false"
    assert set(cfg["4lw.commands.whitelist"].split(",")) >= {"ruok", "srvr", "mntr"}
    n = zk.nodes[2]
    assert cfg["server.3"] == f"127.0.0.1:{n.quorum_port}:{n.election_port}"
    assert (tmp_path / "zk2" / "data" / "myid").read_text().strip() == "2"
    assert "log4j.appender.ROLLINGFILE" in (tmp_path / "zk2/conf/log4j.properties").read_text()
    ports = [p for n in zk.nodes for p in (n.client_port, n.quorum_port, n.election_port)]
    assert len(set(ports)) == 9
    assert zk.connect_string == ",".join(f"127.0.0.1:{zk.client_port(i)}" for i in range(3))


def test_single_node_config_is_standalone(tmp_path: Path) -> None:
    cfg = _config(ZooKeeperEnsemble(tmp_path, size=1), 0)
    assert "standaloneEnabled" not in cfg
    assert not any(key.startswith("server.") for key in cfg)
    assert "minSessionTimeout" not in cfg


def test_round_trip(tmp_path: Path) -> None:
    zk = ZooKeeperEnsemble(tmp_path, size=3, tick_ms=200)
    copy = ZooKeeperEnsemble.from_dict(zk.to_dict())
    assert copy.to_dict() == zk.to_dict()


def test_missing_packages_are_named(tmp_path: Path) -> None:
    with pytest.raises(ZooKeeperNotInstalled, match="zookeeper"):
        find_classpath(tmp_path)


def test_parse_srvr() -> None:
    info = parse_srvr(SRVR)
    assert info["mode"] == "leader"
    assert info["zxid"] == "0x100000002"
    assert info["node_count"] == 7 and info["connections"] == 2
    assert info["latency_ms"] == {"min": 0.0, "avg": 0.5, "max": 3.0}
    not_serving = "This ZooKeeper instance is not currently serving requests\n"
    assert parse_srvr(not_serving) == {"mode": "not serving"}


def test_parse_mntr() -> None:
    mntr = parse_mntr("zk_version\t3.8.0\nzk_znode_count\t5\nzk_synced_followers\t2\n")
    assert mntr == {"zk_version": "3.8.0", "zk_znode_count": "5", "zk_synced_followers": "2"}


def test_routes_put_a_peer_behind_relays_and_survive_the_state_file(tmp_path: Path) -> None:
    """How the soak partitions a node: each viewer's config names the relay, the node's
    own line stays its real ports (it binds them), and the routes round-trip."""
    zk = ZooKeeperEnsemble(tmp_path, size=3)
    one, _, three = zk.nodes
    zk.routes = {"2>1": [40001, 40002], "1>2": [40003, 40004]}
    assert _config(zk, 1)["server.1"] == "127.0.0.1:40001:40002"
    assert _config(zk, 0)["server.2"] == "127.0.0.1:40003:40004"
    assert _config(zk, 0)["server.1"] == f"127.0.0.1:{one.quorum_port}:{one.election_port}"
    assert _config(zk, 2)["server.1"] == f"127.0.0.1:{one.quorum_port}:{one.election_port}"
    assert _config(zk, 2)["server.3"] == f"127.0.0.1:{three.quorum_port}:{three.election_port}"
    assert ZooKeeperEnsemble.from_dict(zk.to_dict()).routes == zk.routes

"""Which cluster a ``zkq`` command uses when nothing names one: the dev cluster running from
here, found through its state directory, as the lowest layer; and the ports a next ``up``
takes again.  Nothing is started: the "running" ZooKeeper node of the state file is this
test process itself (a live pid with its start time)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zkq.coordinator.acl import Role
from zkq.dev import credentials, statedir
from zkq.dev.discovery import find
from zkq.dev.portbook import PortBook, is_free
from zkq.dev.processes import ManagedProcess, read_stat
from zkq.dev.services import ServiceSettings
from zkq.dev.zookeeper import ZooKeeperEnsemble
from zkq.options import MYSQL, ZOOKEEPER, CliContext, connection_options, pass_cli
from zkq.settings_source import SettingsSource

DEV_HOSTS, DEV_ROOT = "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "/devroot"
DEV_MYSQL = "mysql://zkq:pw@127.0.0.1:4/zkq"
#: every variable that could name a cluster on the machine running the tests
CLEAN_ENV: dict[str, str | None] = {
    var: None
    for var in (
        "ZKQ_ZK_HOSTS",
        "ZKQ_ROOT",
        "ZKQ_MYSQL_URL",
        "ZKQ_CONFIG",
        "ZKQ_HAPROXY_STATS",
        "ZKQ_ZK_AUTH",
        "ZKQ_ZK_AUTH_FILE",
        "ZKQ_ZK_ACL",
        "ZKQ_DEV_DIR",
    )
}


class _Written(credentials.RoleCredentials):
    """What a running dev cluster writes into its state directory, without the cluster."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.settings = ServiceSettings(DEV_ROOT, env=credentials.generate(state_dir))

    @property
    def connect_string(self) -> str:
        return DEV_HOSTS

    @property
    def root(self) -> str:
        return self.settings.root


def _state_file(state_dir: Path, pid: int, ticks: int) -> None:
    ensemble = ZooKeeperEnsemble(state_dir / "zookeeper", size=1, ports=[1, 2, 3])
    node = ensemble.nodes[0]
    node.process = ManagedProcess("zk1", pid, ["java"], node.log_path, time.time(), ticks)
    statedir.write_state(state_dir / statedir.STATE_FILE, {"zookeeper": ensemble.to_dict()})


@pytest.fixture
def dev_dir(tmp_path: Path) -> Iterator[Path]:
    """``<tmp>/.zkq-dev`` of a cluster that "runs": its ZooKeeper node is this process."""
    state_dir = tmp_path / ".zkq-dev"
    statedir.make_private(state_dir)
    _Written(state_dir).write_role_configs(DEV_MYSQL, "http://127.0.0.1:5/stats")
    stat = read_stat(os.getpid())
    assert stat is not None
    _state_file(state_dir, os.getpid(), stat.start_ticks)
    yield state_dir


def _probe(name: str) -> click.Command:
    @click.command(name)
    @connection_options(ZOOKEEPER, MYSQL)
    @pass_cli
    def probe(cli: CliContext) -> None:
        config = cli.config
        answer = {
            "hosts": config.zk.hosts,
            "root": config.zk.root,
            "mysql": config.mysql.url if config.mysql else None,
            "user": config.zk.auth.split(":")[0] if config.zk.auth else None,
            "stats": config.haproxy_stats,
        }
        click.echo(json.dumps(answer))

    return probe


def resolved(*args: str, command: str = "status", **env: str) -> dict[str, object]:
    runner = CliRunner(env={**CLEAN_ENV, **env})
    result = runner.invoke(_probe(command), list(args))
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_a_command_run_beside_a_running_dev_cluster_uses_it(
    dev_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dev_dir.parent)
    assert resolved() == {
        "hosts": DEV_HOSTS,
        "root": DEV_ROOT,
        "mysql": DEV_MYSQL,
        "user": "zkq-coordinator",  # so an operator may act
        "stats": "http://127.0.0.1:5/stats",
    }
    # each service with its role's credential
    assert resolved(command="worker")["user"] == "zkq-worker"
    assert resolved(command="frontend")["user"] == "zkq-frontend"
    assert resolved(command="coordinator")["user"] == "zkq-coordinator"


def test_zkq_dev_dir_names_the_state_directory_from_anywhere(
    dev_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolved()["hosts"] == "127.0.0.1:2181"  # no .zkq-dev here, and no search upwards
    assert resolved(ZKQ_DEV_DIR=str(dev_dir))["hosts"] == DEV_HOSTS


def test_anything_that_names_a_cluster_wins_whole(
    dev_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(dev_dir.parent)
    nothing_of_the_dev_cluster = {"mysql": None, "user": None, "stats": None, "root": "/zkq"}
    for answer in (
        resolved("--zk", "flag:1"),
        resolved(ZKQ_ZK_HOSTS="env:1"),
    ):
        assert answer["hosts"] in ("flag:1", "env:1")
        # never the dev cluster's database or credential with another ZooKeeper
        assert {k: answer[k] for k in nothing_of_the_dev_cluster} == nothing_of_the_dev_cluster
    file = tmp_path / "zkq.toml"
    file.write_text('[zookeeper]\nroot = "/fromfile"\n')
    for answer in (resolved("--config", str(file)), resolved(ZKQ_CONFIG=str(file))):
        # a config file names the cluster even without hosts: zkq's defaults, not the dev's
        assert (answer["hosts"], answer["root"], answer["mysql"]) == (
            "127.0.0.1:2181",
            "/fromfile",
            None,
        )
    # a setting that names no cluster still wins over the dev cluster's, one by one
    mixed = resolved(ZKQ_ROOT="/mine")
    assert (mixed["hosts"], mixed["root"], mixed["mysql"]) == (DEV_HOSTS, "/mine", DEV_MYSQL)


def test_a_stopped_dev_cluster_is_never_used(
    dev_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dev_dir.parent)
    stat = read_stat(os.getpid())
    assert stat is not None
    # its processes died (a reboot): the pid is alive but another process now
    _state_file(dev_dir, os.getpid(), stat.start_ticks + 1)
    assert resolved()["hosts"] == "127.0.0.1:2181"
    found = find({})
    assert found is not None and not found.running
    source = SettingsSource.find({}, {}, "status")
    message = source.unreachable("127.0.0.1:2181", 5)
    assert "\n" not in message
    assert f"(zkq's default, as the dev cluster in {dev_dir} is not running)" in message
    for way in ("`zkq dev up`", "--zk", "ZKQ_ZK_HOSTS", "--config", "ZKQ_CONFIG"):
        assert way in message, way
    assert '/etc/zkq/zkq.toml, or eval "$(zkq dev env)"' in message
    # stopped with `zkq dev down`: no state file at all
    (dev_dir / statedir.STATE_FILE).unlink()
    assert resolved()["hosts"] == "127.0.0.1:2181"


def test_the_unreachable_message_says_where_the_hosts_came_from(tmp_path: Path) -> None:
    assert "(from --zk)" in SettingsSource.find({"hosts": "h:1"}, {}, None).unreachable("h:1", 5)
    env = SettingsSource.find({}, {"ZKQ_ZK_HOSTS": "h:1"}, None)
    assert "(from ZKQ_ZK_HOSTS)" in env.unreachable("h:1", 5)
    file = tmp_path / "zkq.toml"
    file.write_text('[zookeeper]\nhosts = "h:1"\n')
    named = SettingsSource.find({}, {"ZKQ_CONFIG": str(file)}, None).unreachable("h:1", 5)
    assert f"(from the config file {file})" in named
    file.write_text('[zookeeper]\nroot = "/r"\n')
    hostless = SettingsSource.find({"config_file": str(file)}, {}, None)
    assert f"(zkq's default, as the config file {file} names none)" in hostless.unreachable("x", 5)
    nothing = SettingsSource.find({}, {"ZKQ_DEV_DIR": str(tmp_path / "none")}, None)
    assert "no dev cluster runs from here" in nothing.unreachable("127.0.0.1:2181", 5)
    assert "`zkq dev up` here" in nothing.unreachable("127.0.0.1:2181", 5)


def test_the_config_files_a_dev_cluster_writes_are_private(dev_dir: Path) -> None:
    for role in Role:
        file = credentials.config_file(dev_dir, role)
        assert file.stat().st_mode & 0o077 == 0, file
        assert f"auth_file = {json.dumps(str(credentials.auth_file(dev_dir, role)))}" in (
            file.read_text()
        )


# -- the ports of the previous run ------------------------------------------------------------
def test_a_next_up_takes_the_previous_ports_where_they_are_free(tmp_path: Path) -> None:
    first = PortBook.recall(tmp_path)
    zk, proxy = first.claim("zookeeper", 3), first.claim("haproxy", 3)
    assert len(set(zk + proxy)) == 6
    first.remember({"zookeeper": zk, "haproxy": proxy})
    first.remember({"zookeeper": zk})  # a later save that has no HAProxy yet keeps its ports
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", proxy[1]))
        squatter.listen()
        assert not is_free(proxy[1])
        second = PortBook.recall(tmp_path)
        assert second.claim("zookeeper", 3) == zk
        again = second.claim("haproxy", 3)
    # the taken port alone is replaced, by one nobody in the book had
    assert again[0] == proxy[0] and again[2] == proxy[2]
    assert again[1] not in zk + proxy
    # more than last time: the rest fresh; and no port handed out twice
    more = second.claim("frontend", 2)
    assert len(set(more) | set(zk) | set(again)) == 8
    # an unreadable book is an empty one
    (tmp_path / "ports.json").write_text("{oops")
    assert PortBook.recall(tmp_path).previous == {}

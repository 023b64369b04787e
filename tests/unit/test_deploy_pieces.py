"""The deployment's small parts that need no hosts: the zoo.cfg checker the ZooKeeper role
validates with, the frontend's settings handed to gunicorn, and the one HAProxy template
shared by the dev cluster and the Ansible role."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zkq.coordinator.config import ClusterConfig
from zkq.frontend.serve import GUNICORN_CONF, gunicorn_argv, settings_environment

REPO = Path(__file__).resolve().parents[2]
ZOO_CFG_CHECK = REPO / "ansible/roles/zookeeper/files/zoo-cfg-check"

GOOD = """\
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/lib/zookeeper
clientPort=2181
maxClientCnxns=1000
server.1=10.0.0.11:2888:3888
server.2=10.0.0.12:2888:3888
server.3=10.0.0.13:2888:3888
"""


def check(tmp_path: Path, text: str, myid: int) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(text)
    return subprocess.run(
        [sys.executable, str(ZOO_CFG_CHECK), str(cfg), str(myid)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_zoo_cfg_check_accepts_a_whole_ensemble(tmp_path: Path) -> None:
    done = check(tmp_path, GOOD, 2)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("change", "myid", "complaint"),
    [
        (lambda t: t.replace("clientPort=2181\n", ""), 1, "clientPort is missing"),
        (lambda t: t.replace("tickTime=2000", "tickTime=2s"), 1, "tickTime is not a whole"),
        (lambda t: t.replace("10.0.0.12:2888:3888", "10.0.0.12:2888"), 1, "server.2 is not"),
        (lambda t: t + "server.3=10.0.0.14:2888:3888\n", 1, "server.3 given twice"),
        (lambda t: t, 4, "id 4 is not among the servers [1, 2, 3]"),
        (lambda t: t + "just words\n", 1, "not key=value"),
    ],
)
def test_zoo_cfg_check_refuses_what_would_keep_a_member_out(
    tmp_path: Path, change: object, myid: int, complaint: str
) -> None:
    done = check(tmp_path, change(GOOD), myid)  # type: ignore[operator]
    assert done.returncode == 1
    assert complaint in done.stderr


def test_the_frontend_gets_the_cluster_settings_as_its_environment() -> None:
    config = ClusterConfig.load(
        environ={},
        hosts="zk1:2181,zk2:2181",
        root="/prod",
        session_timeout=7,
        mysql_url="mysql://zkq:p%40ss@db:3306/zkq",
    )
    env = settings_environment(config)
    assert env["ZKQ_ZK_HOSTS"] == "zk1:2181,zk2:2181"
    assert env["ZKQ_ROOT"] == "/prod"
    assert float(env["ZKQ_SESSION_TIMEOUT"]) == 7
    # the frontend parses the URL it is given back into the same settings
    from zkq.coordinator.mysql import MySQLSettings

    assert MySQLSettings.from_url(env["ZKQ_MYSQL_URL"]) == config.mysql
    assert "ZKQ_MYSQL_URL" not in settings_environment(ClusterConfig.load(environ={}))


def test_zkq_frontend_runs_gunicorn_with_the_packaged_config() -> None:
    argv = gunicorn_argv()
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert Path(argv[argv.index("-c") + 1]) == GUNICORN_CONF and GUNICORN_CONF.is_file()


def test_the_ansible_role_renders_the_dev_clusters_haproxy_template() -> None:
    linked = REPO / "ansible/roles/haproxy/templates/haproxy.cfg.j2"
    assert linked.is_symlink()
    assert linked.resolve() == (REPO / "haproxy/haproxy.cfg.j2").resolve()

from pathlib import Path

import pytest

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import ConfigError


def test_layers_defaults_then_env_then_overrides() -> None:
    env = {"ZKQ_ZK_HOSTS": "h1:1", "ZKQ_ROOT": "/a", "ZKQ_PAYLOAD_LIMIT": "1000"}
    cfg = ClusterConfig.load(env, root="/b", session_timeout=None)
    assert cfg.zk.hosts == "h1:1" and cfg.zk.root == "/b" and cfg.zk.session_timeout == 10.0
    assert cfg.limits.payload_bytes == 1000


@pytest.mark.parametrize(
    "env", [{"ZKQ_SESSION_TIMEOUT": "soon"}, {"ZKQ_ROOT": "rel"}, {"ZKQ_PAYLOAD_LIMIT": "2000000"}]
)
def test_bad_settings_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        ClusterConfig.load(env)


def test_a_config_file_sits_between_defaults_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "zkq.toml"
    file.write_text(
        '[zookeeper]\nhosts = "f1:1,f2:2"\nroot = "/fromfile"\n'
        '[mysql]\nurl = "mysql://u:p@db:3306/zkq"\n[haproxy]\nstats = "lb:8404"\n'
    )
    cfg = ClusterConfig.load({"ZKQ_ROOT": "/fromenv"}, config_file=str(file))
    assert cfg.zk.hosts == "f1:1,f2:2" and cfg.zk.root == "/fromenv"
    assert cfg.mysql is not None and cfg.mysql.host == "db"
    assert cfg.haproxy_stats == "lb:8404"
    assert ClusterConfig.load({"ZKQ_CONFIG": str(file)}, hosts="flag:1").zk.hosts == "flag:1"


@pytest.mark.parametrize(
    ("text", "message"),
    [("[zookeeper]\nhots = 1\n", "unknown setting zookeeper.hots"), ("not toml [", "cannot read")],
)
def test_a_bad_config_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "zkq.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        ClusterConfig.load({}, config_file=str(file))


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ClusterConfig.load({"ZKQ_CONFIG": str(tmp_path / "missing.toml")})

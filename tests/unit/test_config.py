import pytest

from coordinator.config import ClusterConfig
from coordinator.errors import ConfigError


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

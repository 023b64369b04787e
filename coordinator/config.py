"""Settings shared by every zkq process, loaded in layers: defaults, then a config file,
then the environment, then explicit overrides (command-line flags, test config).  Nothing
reads them at import time; each service builds its config object once at start-up.

The config file is TOML, named by ``--config`` or ``ZKQ_CONFIG``, else ``/etc/zkq/zkq.toml``
when it exists::

    [zookeeper]
    hosts = "zk1:2181,zk2:2181,zk3:2181"
    root = "/zkq"
    session_timeout = 10

    [limits]
    payload_bytes = 65536
    result_bytes = 65536

    [mysql]
    url = "mysql://zkq:secret@db:3306/zkq"

    [coordinator]
    retention = 3600

    [haproxy]
    stats = "lb:8404"          # for `zkq status`

Environment variables:

=====================  ================================================  ================
variable               meaning                                           default
=====================  ================================================  ================
ZKQ_ZK_HOSTS           ZooKeeper connect string                          127.0.0.1:2181
ZKQ_ROOT               root znode of this cluster                        /zkq
ZKQ_SESSION_TIMEOUT    session timeout asked of ZooKeeper, seconds       10
ZKQ_PAYLOAD_LIMIT      largest payload, bytes                            65536
ZKQ_RESULT_LIMIT       largest result, bytes                             65536
ZKQ_MYSQL_URL          MySQL database (mysql://user:pw@host:port/db):    none: no MySQL
                       keys, rate limits, request log, job archive
ZKQ_RETENTION          seconds a finished job stays in ZooKeeper before  3600
                       the leader archives it to MySQL and prunes it
ZKQ_HAPROXY_STATS      HAProxy stats address (host:port), for status     none
ZKQ_CONFIG             the config file                                   /etc/zkq/zkq.toml
=====================  ================================================  ================
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkq.coordinator.errors import ConfigError
from zkq.coordinator.job import Limits
from zkq.coordinator.mysql import MySQLSettings
from zkq.coordinator.paths import Layout


@dataclass(frozen=True)
class ZkSettings:
    hosts: str = "127.0.0.1:2181"
    root: str = "/zkq"
    session_timeout: float = 10.0

    @property
    def layout(self) -> Layout:
        return Layout(self.root)


@dataclass(frozen=True)
class ClusterConfig:
    """What every zkq process needs to find and respect its cluster."""

    zk: ZkSettings = field(default_factory=ZkSettings)
    limits: Limits = field(default_factory=Limits)
    #: None: no MySQL (no archive, so finished jobs stay in ZooKeeper)
    mysql: MySQLSettings | None = None
    retention_seconds: float = 3600.0
    #: where ``zkq status`` reads HAProxy's view of the frontends
    haproxy_stats: str | None = None

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClusterConfig:
        """Defaults, then ``environ`` (``os.environ`` by default), then ``overrides``
        (``hosts``, ``root``, ``session_timeout``, ``payload_bytes``, ``result_bytes``,
        ``mysql_url``, ``retention``; ``None`` values are ignored, so unset flags fall
        through)."""
        env = os.environ if environ is None else environ
        config_file = overrides.pop("config_file", None) or env.get("ZKQ_CONFIG") or None
        values: dict[str, Any] = read_config_file(config_file)
        for key, var, conv in _ENV:
            if var in env and env[var] != "":
                try:
                    values[key] = conv(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var}={env[var]!r} is not valid: {exc}") from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {k for k, _, _ in _ENV}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        try:
            zk = ZkSettings(
                **{k: values[k] for k in ("hosts", "root", "session_timeout") if k in values}
            )
            zk.layout  # noqa: B018 - validates the root
            limits = Limits(
                **{k: values[k] for k in ("payload_bytes", "result_bytes") if k in values}
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if zk.session_timeout <= 0:
            raise ConfigError("session timeout must be positive")
        mysql_url = values.get("mysql_url")
        mysql = MySQLSettings.from_url(mysql_url) if mysql_url else None
        retention = values.get("retention", cls.retention_seconds)
        if retention < 0:
            raise ConfigError("retention must be zero or more seconds")
        return cls(
            zk=zk,
            limits=limits,
            mysql=mysql,
            retention_seconds=retention,
            haproxy_stats=values.get("haproxy_stats"),
        )

    def with_zk(self, **changes: Any) -> ClusterConfig:
        return dataclasses.replace(self, zk=dataclasses.replace(self.zk, **changes))


_ENV: list[tuple[str, str, Any]] = [
    ("hosts", "ZKQ_ZK_HOSTS", str),
    ("root", "ZKQ_ROOT", str),
    ("session_timeout", "ZKQ_SESSION_TIMEOUT", float),
    ("payload_bytes", "ZKQ_PAYLOAD_LIMIT", int),
    ("result_bytes", "ZKQ_RESULT_LIMIT", int),
    ("mysql_url", "ZKQ_MYSQL_URL", str),
    ("retention", "ZKQ_RETENTION", float),
    ("haproxy_stats", "ZKQ_HAPROXY_STATS", str),
]

DEFAULT_CONFIG_FILE = Path("/etc/zkq/zkq.toml")

#: (section, key) in the config file -> the setting it gives
_FILE_KEYS: dict[tuple[str, str], str] = {
    ("zookeeper", "hosts"): "hosts",
    ("zookeeper", "root"): "root",
    ("zookeeper", "session_timeout"): "session_timeout",
    ("limits", "payload_bytes"): "payload_bytes",
    ("limits", "result_bytes"): "result_bytes",
    ("mysql", "url"): "mysql_url",
    ("coordinator", "retention"): "retention",
    ("haproxy", "stats"): "haproxy_stats",
}


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """Settings from a TOML file; an unnamed file that does not exist gives none."""
    named = path is not None
    file = Path(path) if path is not None else DEFAULT_CONFIG_FILE
    try:
        with open(file, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if named:
            raise ConfigError(f"config file {file} does not exist") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from exc
    values: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: {section!r} must be a [section]")
        for key, value in table.items():
            setting = _FILE_KEYS.get((section, key))
            if setting is None:
                known = ", ".join(f"{s}.{k}" for s, k in _FILE_KEYS)
                raise ConfigError(f"{file}: unknown setting {section}.{key} (known: {known})")
            values[setting] = value
    return values

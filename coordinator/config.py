"""Settings shared by every zkq process, loaded in layers: defaults, then a config file,
then the environment, then explicit overrides (command-line flags, test config).  Nothing
reads them at import time; each service builds its config object once at start-up.

The config file is TOML, named by ``--config`` or ``ZKQ_CONFIG``, else ``/etc/zkq/zkq.toml``
when it exists::

    [zookeeper]
    hosts = "zk1:2181,zk2:2181,zk3:2181"
    root = "/zkq"
    session_timeout = 10
    auth_file = "/etc/zkq/zk-worker.auth"   # this process's user:password, mode 0600
    acl = "coordinator=zkq-coordinator:HASH,frontend=...,worker=...,operator=..."

    [limits]
    payload_bytes = 65536
    result_bytes = 65536

    [mysql]
    url = "mysql://zkq:secret@db:3306/zkq"

    [coordinator]
    retention = 3600

    [haproxy]
    stats = "lb:8404"          # for `zkq status`

    [status]
    unserved_after = 60        # for `zkq status`
    [client]
    tenant = "default"         # whose jobs `zkq submit` and zkq.Client submit

Environment variables:

=====================  ================================================  ================
variable               meaning                                           default
=====================  ================================================  ================
ZKQ_ZK_HOSTS           ZooKeeper connect string                          127.0.0.1:2181
ZKQ_ROOT               root znode of this cluster                        /zkq
ZKQ_SESSION_TIMEOUT    session timeout asked of ZooKeeper, seconds       10
ZKQ_ZK_AUTH_FILE       a file (mode 0600) holding this process's         none: anonymous
                       ZooKeeper credential, user:password
ZKQ_ZK_AUTH            the credential itself (the environment is the     none
                       process's own; never put it on a command line)
ZKQ_ZK_ACL             every role's digest identity, role=user:hash,...  none: nodes are
                       (``zkq.coordinator.acl``); nodes zkq creates      created open
                       carry the ACLs of that policy                     to all
ZKQ_PAYLOAD_LIMIT      largest payload, bytes                            65536
ZKQ_RESULT_LIMIT       largest result, bytes                             65536
ZKQ_MYSQL_URL          MySQL database (mysql://user:pw@host:port/db):    none: no MySQL
                       keys, rate limits, request log, job archive
ZKQ_RETENTION          seconds a finished job stays in ZooKeeper before  3600
                       the leader archives it to MySQL and prunes it
ZKQ_HAPROXY_STATS      HAProxy stats address (host:port), for status     none
ZKQ_UNSERVED_AFTER     seconds pending jobs of a type no live worker     60
                       serves may wait before ``zkq status`` reports it
ZKQ_TENANT             the tenant of jobs submitted straight to          default
                       ZooKeeper (``zkq submit``, ``zkq.Client``), as an
                       API key's tenant is over HTTP: an admin key reads
                       them there, a key of that tenant too
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

from zkq.coordinator.acl import AclIdentities, parse_credential
from zkq.coordinator.errors import ConfigError, InvalidInput
from zkq.coordinator.job import Limits
from zkq.coordinator.mysql import MySQLSettings
from zkq.coordinator.paths import Layout
from zkq.coordinator.schedules import SYSTEM_OWNER, ScheduleRecord

#: the tenant of jobs submitted without an API key (``zkq submit``, ``zkq.Client``)
DEFAULT_TENANT = "default"
#: as long as a tenant may be (the API keys' and the archive's column)
TENANT_MAX = 64


@dataclass(frozen=True)
class ZkSettings:
    hosts: str = "127.0.0.1:2181"
    root: str = "/zkq"
    session_timeout: float = 10.0
    #: this process's digest credential, ``user:password``; None: anonymous.  Kept out of
    #: the repr, so a logged settings object never shows it
    auth: str | None = field(default=None, repr=False)
    #: every role's identity: nodes get :class:`~zkq.coordinator.acl.AclPolicy`'s ACLs;
    #: None: nodes are created open to everyone (``world:anyone``), as before ACLs
    acl: AclIdentities | None = None

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
    #: seconds pending jobs of a type nobody serves wait before ``zkq status`` says so
    unserved_after: float = 60.0
    #: the tenant of jobs submitted through :class:`~zkq.coordinator.client.Client` (so by
    #: ``zkq submit``); over HTTP a job's tenant is its API key's
    tenant: str = DEFAULT_TENANT
    #: periodic schedules declared in the file (``[[schedules]]``): the leader writes them
    #: under owner ``_`` (:mod:`zkq.coordinator.ticker`)
    schedules: tuple[ScheduleRecord, ...] = ()

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClusterConfig:
        """Defaults, then ``environ`` (``os.environ`` by default), then ``overrides``
        (``hosts``, ``root``, ``session_timeout``, ``zk_auth``, ``zk_auth_file``, ``zk_acl``,
        ``payload_bytes``, ``result_bytes``, ``mysql_url``, ``retention``, ``tenant``;
        ``None`` values are ignored, so unset flags fall through)."""
        env = os.environ if environ is None else environ
        config_file = overrides.pop("config_file", None) or env.get("ZKQ_CONFIG") or None
        values: dict[str, Any] = read_config_file(config_file)
        from_env: dict[str, Any] = {}
        for key, var, conv in _ENV:
            if var in env and env[var] != "":
                try:
                    from_env[key] = conv(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var}={env[var]!r} is not valid: {exc}") from exc
        _lay(values, from_env)
        _lay(values, {k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {k for k, _, _ in _ENV} - {"schedules"}
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        try:
            zk = ZkSettings(
                **{k: values[k] for k in ("hosts", "root", "session_timeout") if k in values},
                auth=_credential(values),
                acl=AclIdentities.parse(values["zk_acl"]) if values.get("zk_acl") else None,
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
        unserved_after = values.get("unserved_after", cls.unserved_after)
        if unserved_after < 0:
            raise ConfigError("unserved_after must be zero or more seconds")
        tenant = str(values.get("tenant", DEFAULT_TENANT))
        if not 0 < len(tenant) <= TENANT_MAX:
            raise ConfigError(f"tenant must be 1 to {TENANT_MAX} characters, not {tenant!r}")
        return cls(
            zk=zk,
            limits=limits,
            mysql=mysql,
            retention_seconds=retention,
            haproxy_stats=values.get("haproxy_stats"),
            unserved_after=unserved_after,
            tenant=tenant,
            schedules=declared_schedules(values.get("schedules", [])),
        )

    def with_zk(self, **changes: Any) -> ClusterConfig:
        return dataclasses.replace(self, zk=dataclasses.replace(self.zk, **changes))


_ENV: list[tuple[str, str, Any]] = [
    ("hosts", "ZKQ_ZK_HOSTS", str),
    ("root", "ZKQ_ROOT", str),
    ("session_timeout", "ZKQ_SESSION_TIMEOUT", float),
    ("zk_auth", "ZKQ_ZK_AUTH", str),
    ("zk_auth_file", "ZKQ_ZK_AUTH_FILE", str),
    ("zk_acl", "ZKQ_ZK_ACL", str),
    ("payload_bytes", "ZKQ_PAYLOAD_LIMIT", int),
    ("result_bytes", "ZKQ_RESULT_LIMIT", int),
    ("mysql_url", "ZKQ_MYSQL_URL", str),
    ("retention", "ZKQ_RETENTION", float),
    ("haproxy_stats", "ZKQ_HAPROXY_STATS", str),
    ("unserved_after", "ZKQ_UNSERVED_AFTER", float),
    ("tenant", "ZKQ_TENANT", str),
]

DEFAULT_CONFIG_FILE = Path("/etc/zkq/zkq.toml")

#: (section, key) in the config file -> the setting it gives
_FILE_KEYS: dict[tuple[str, str], str] = {
    ("zookeeper", "hosts"): "hosts",
    ("zookeeper", "root"): "root",
    ("zookeeper", "session_timeout"): "session_timeout",
    ("zookeeper", "auth"): "zk_auth",
    ("zookeeper", "auth_file"): "zk_auth_file",
    ("zookeeper", "acl"): "zk_acl",
    ("limits", "payload_bytes"): "payload_bytes",
    ("limits", "result_bytes"): "result_bytes",
    ("mysql", "url"): "mysql_url",
    ("coordinator", "retention"): "retention",
    ("haproxy", "stats"): "haproxy_stats",
    ("status", "unserved_after"): "unserved_after",
    ("client", "tenant"): "tenant",
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
    if "auth" in data.get("zookeeper", {}):
        require_private(file, "a config file that holds a ZooKeeper credential")
    if isinstance(data.get("schedules"), list):
        values["schedules"] = data.pop("schedules")
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


def declared_schedules(tables: list[Any]) -> tuple[ScheduleRecord, ...]:
    """The ``[[schedules]]`` of a config file, as records owned by ``_``."""
    out: list[ScheduleRecord] = []
    for table in tables:
        try:
            if not isinstance(table, dict):
                raise ValueError("each [[schedules]] must be a table")
            out.append(ScheduleRecord(**{**table, "owner": SYSTEM_OWNER, "source": "config"}))
        except (TypeError, ValueError, InvalidInput) as exc:
            raise ConfigError(f"[[schedules]] {table.get('name', '?')!r}: {exc}") from None
    return tuple(out)


def require_private(path: Path, what: str) -> None:
    """Refuse ``path`` if anyone but its owner may read or write it (as ssh refuses a
    private key): a secret in a file readable by all is no secret."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise ConfigError(
            f"{what} {path} is open to other users (mode {mode & 0o777:03o}): run chmod 600 {path}"
        )


def _lay(values: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """Lay ``layer`` over ``values``; a credential given either way (inline or as a file)
    replaces the lower layer's, whichever way that one was given."""
    if "zk_auth" in layer or "zk_auth_file" in layer:
        values.pop("zk_auth", None)
        values.pop("zk_auth_file", None)
    values.update(layer)


def _credential(values: Mapping[str, Any]) -> str | None:
    """This process's ZooKeeper credential: given inline, or read from a private file."""
    inline, file = values.get("zk_auth"), values.get("zk_auth_file")
    if inline and file:
        raise ConfigError("give a ZooKeeper credential inline or as a file, not both")
    if file:
        path = Path(file)
        require_private(path, "ZooKeeper credential file")
        try:
            inline = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read ZooKeeper credential file {path}: {exc}") from exc
        parse_credential(inline, f"the credential in {path}")
    elif inline:
        parse_credential(inline, "the ZooKeeper credential (ZKQ_ZK_AUTH)")
    return str(inline) if inline else None

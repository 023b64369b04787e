"""Settings shared by every zkq process, loaded in layers: defaults, then the environment,
then explicit overrides (command-line flags, test config).  Nothing reads them at import
time; each service builds its config object once at start-up.

Environment variables:

=====================  ================================================  ================
variable               meaning                                           default
=====================  ================================================  ================
ZKQ_ZK_HOSTS           ZooKeeper connect string                          127.0.0.1:2181
ZKQ_ROOT               root znode of this cluster                        /zkq
ZKQ_SESSION_TIMEOUT    session timeout asked of ZooKeeper, seconds       10
ZKQ_PAYLOAD_LIMIT      largest payload, bytes                            65536
ZKQ_RESULT_LIMIT       largest result, bytes                             65536
=====================  ================================================  ================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.errors import ConfigError
from coordinator.job import Limits
from coordinator.paths import Layout


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

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ClusterConfig:
        """Defaults, then ``environ`` (``os.environ`` by default), then ``overrides``
        (``hosts``, ``root``, ``session_timeout``, ``payload_bytes``, ``result_bytes``;
        ``None`` values are ignored, so unset flags fall through)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
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
        return cls(zk=zk, limits=limits)

    def with_zk(self, **changes: Any) -> ClusterConfig:
        return dataclasses.replace(self, zk=dataclasses.replace(self.zk, **changes))


_ENV: list[tuple[str, str, Any]] = [
    ("hosts", "ZKQ_ZK_HOSTS", str),
    ("root", "ZKQ_ROOT", str),
    ("session_timeout", "ZKQ_SESSION_TIMEOUT", float),
    ("payload_bytes", "ZKQ_PAYLOAD_LIMIT", int),
    ("result_bytes", "ZKQ_RESULT_LIMIT", int),
]

"""Members of a dev cluster: every supervised process other than the ZooKeeper nodes.

A member is a record (role, name, process, ports), so it round-trips through the state
file.  What differs between roles is data, not subclasses: the start order in
:data:`ROLE_ORDER` and an optional readiness probe in :data:`HEALTH_PROBES`.  Adding
MariaDB, the gunicorn frontends or HAProxy means a new role name in the order, a probe
(``SELECT 1``, ``GET /readyz``, ``haproxy`` stats) and a start function in the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from zkq.dev.processes import ManagedProcess

#: start order; stop order is the reverse, so services stop before what they depend on
#: (MariaDB after the frontends, which flush their request logs into it on the way out).
#: Later: "frontend" and "haproxy" after "worker".
ROLE_ORDER = ("mariadb", "coordinator", "worker")


@dataclass
class Member:
    """One supervised process of the cluster (ZooKeeper nodes excepted: see the ensemble)."""

    name: str  # unique in the cluster: "worker-3"
    role: str  # one of ROLE_ORDER
    process: ManagedProcess
    ports: dict[str, int] = field(default_factory=dict)  # e.g. {"http": 8001}

    def healthy(self) -> bool:
        probe = HEALTH_PROBES.get(self.role)
        return self.process.alive() and (probe is None or probe(self))

    def status(self) -> dict[str, Any]:
        alive = self.process.alive()
        return {
            "name": self.name,
            "role": self.role,
            "pid": self.process.pid,
            "alive": alive,
            "healthy": alive and self.healthy(),
            "ports": dict(self.ports),
            "rss_bytes": self.process.rss_bytes() if alive else None,
            "exit_code": self.process.exit_code,
            "log": str(self.process.log_path),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "ports": dict(self.ports),
            "process": self.process.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Member:
        return cls(
            name=str(data["name"]),
            role=str(data["role"]),
            process=ManagedProcess.from_dict(data["process"]),
            ports={str(k): int(v) for k, v in data.get("ports", {}).items()},
        )


#: role -> extra readiness probe beyond "the process is alive" (e.g. GET /readyz later).
#: Coordinators and workers have none: their liveness in ZooKeeper is their registration,
#: which status() reports separately.
HEALTH_PROBES: dict[str, Callable[[Member], bool]] = {}

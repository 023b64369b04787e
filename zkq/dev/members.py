"""Members of a dev cluster: every supervised process other than the ZooKeeper nodes.

A member is a record (role, name, process, ports), so it round-trips through the state
file.  What differs between roles is data, not subclasses: the start order in
:data:`ROLE_ORDER` and an optional readiness probe in :data:`HEALTH_PROBES`.  A module that
starts the members of a role (:mod:`.frontends`, :mod:`.mariadb`) registers its probe here
and takes a :class:`Roster`, the part of a cluster that members join, rather than the
cluster itself: :mod:`.cluster` imports those modules, so they must not import it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from zkq.coordinator.acl import Role
from zkq.dev import processes
from zkq.dev.errors import StartupFailed
from zkq.dev.processes import ManagedProcess

if TYPE_CHECKING:
    from zkq.dev.portbook import PortBook

#: start order; stop order is the reverse, so services stop before what they depend on
#: (MariaDB after the frontends, which flush their request logs into it on the way out).
#: Roles not listed here (the frontends, HAProxy) count as started last.
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


def stop_in_order(members: Sequence[Member], timeout: float) -> None:
    """Stop ``members`` in reverse start order, one role at a time, each role's processes in
    parallel; roles outside :data:`ROLE_ORDER` count as started last."""
    others = sorted({m.role for m in members} - set(ROLE_ORDER))
    for role in [*others, *reversed(ROLE_ORDER)]:
        processes.stop_all([m.process for m in members if m.role == role], timeout)


def check_alive(members: Iterable[Member]) -> None:
    """Raise :class:`StartupFailed` with the log's last lines if one of ``members`` has
    died: waiting for its readiness would only run into the deadline."""
    for m in members:
        if not m.process.alive():
            raise StartupFailed(
                f"{m.name} (pid {m.process.pid}) exited with {m.process.exit_code}; "
                f"last lines of {m.process.log_path}:\n{m.process.log_tail(15)}"
            )


class Roster(Protocol):
    """The part of a cluster that members join (a :class:`~zkq.dev.cluster.DevCluster` is
    one): where their files go, what they connect to, and the list they are kept in."""

    state_dir: Path
    members: list[Member]
    #: the previous run's ports, reused where free
    port_book: PortBook

    @property
    def connect_string(self) -> str: ...

    @property
    def root(self) -> str: ...

    def add_member(
        self,
        role: str,
        argv: list[str],
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        ports: dict[str, int] | None = None,
    ) -> Member:
        """Start ``argv`` as a member (with the cluster's service environment) and record it."""
        ...

    def member(self, name: str) -> Member: ...

    def zk_options(self, role: Role | str) -> dict[str, str]:
        """:meth:`ClusterConfig.load` overrides that connect as ``role``."""
        ...

    def members_of(self, role: str) -> list[Member]: ...

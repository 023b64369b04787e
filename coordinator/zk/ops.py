"""The ops of one multi, as plain values: built without I/O (:mod:`zkq.coordinator.lifecycle`),
run by :meth:`ZkSession.multi <coordinator.zk.session.ZkSession.multi>`.

A ``version`` of -1 matches any version; on :class:`Check` it asks only that the node
exists (the leader's fence, its own election node).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Create:
    path: str
    value: bytes = b""
    ephemeral: bool = False


@dataclass(frozen=True)
class Delete:
    path: str
    version: int = -1


@dataclass(frozen=True)
class SetData:
    path: str
    value: bytes
    version: int = -1


@dataclass(frozen=True)
class Check:
    path: str
    version: int = -1


Op = Create | Delete | SetData | Check


def data_bytes(op: Op) -> int:
    """What ``op`` carries in data, for keeping a multi under ZooKeeper's buffer."""
    return len(op.value) if isinstance(op, Create | SetData) else 0


__all__ = ["Check", "Create", "Delete", "Op", "SetData", "data_bytes"]

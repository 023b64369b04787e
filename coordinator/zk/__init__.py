"""The boundary with ZooKeeper: an interface (:class:`ZkSession`), its values and errors,
and :func:`connect`, which every process uses to make its one session.

::

    errors.py         NoNode, NodeExists, BadVersion, NotEmpty (outcomes), TransactionFailed,
                      NotPermitted (the ACL refuses our credential),
                      ConnectionLost (transient)
    ops.py            Create, Delete, SetData, Check: the ops of one multi, as values
    session.py        ZkSession: the connection-state policy, and the primitive operations
    kazoo_session.py  KazooSession: ZkSession over kazoo, the only module importing kazoo
    memory.py         MemoryZooKeeper: one tree in memory, its faults, a ManualClock
    memory_session.py MemorySession: ZkSession over that tree, for unit tests

Code outside this package sees only the interface, so a session that keeps its nodes in
memory stands in for ZooKeeper in unit tests.
"""

from __future__ import annotations

from zkq.coordinator.config import ZkSettings
from zkq.coordinator.zk.errors import (
    BadVersion,
    ConnectionLost,
    NodeExists,
    NoNode,
    NotEmpty,
    NotPermitted,
    RequestTimedOut,
    TransactionFailed,
    ZkOutcome,
    zk_errors,
)
from zkq.coordinator.zk.ops import Check, Create, Delete, Op, SetData, data_bytes
from zkq.coordinator.zk.session import (
    Backoff,
    ConnectionState,
    Election,
    EventType,
    OpResult,
    Stat,
    Watch,
    WatchEvent,
    ZkSession,
)


def connect(
    settings: ZkSettings, name: str = "zkq", gevent: bool = False, quiet: bool = False
) -> ZkSession:
    """This process's session to the ensemble of ``settings``, not yet started
    (:meth:`ZkSession.start`).  ``gevent``: in a gevent-patched process (gunicorn's gevent
    workers).  ``quiet``: log nothing of the client's own (a probe that expects failures)."""
    # imported here, so that code holding only the interface (a unit test with a session
    # in memory) never loads kazoo
    from zkq.coordinator.zk.kazoo_session import KazooSession

    return KazooSession(settings, name=name, gevent=gevent, quiet=quiet)


__all__ = [
    "Backoff",
    "BadVersion",
    "Check",
    "ConnectionLost",
    "ConnectionState",
    "Create",
    "Delete",
    "Election",
    "EventType",
    "NoNode",
    "NodeExists",
    "NotEmpty",
    "NotPermitted",
    "Op",
    "OpResult",
    "RequestTimedOut",
    "SetData",
    "Stat",
    "TransactionFailed",
    "Watch",
    "WatchEvent",
    "ZkOutcome",
    "ZkSession",
    "connect",
    "data_bytes",
    "zk_errors",
]

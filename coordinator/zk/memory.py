"""An in-memory ZooKeeper, for unit tests: :class:`MemoryZooKeeper` holds one tree that many
:class:`~zkq.coordinator.zk.memory_session.MemorySession` objects share, as many processes
share an ensemble (dramatiq's ``StubBroker``, for zkq).

What it answers is what ZooKeeper 3.8 answers through :class:`KazooSession`, and
``tests/integration/test_memory_zookeeper.py`` runs one script against both to keep it so:

- every write checks what the server checks, in the server's order: a create finds its
  parent missing (``NoNode``), then the node there (``NodeExists``), then an ephemeral
  parent (refused: ephemerals have no children); a delete finds the node missing, then a
  version other than asked (``BadVersion``), then children (``NotEmpty``);
- a sequential name ends in ten digits counting the children ever created under the
  parent (ZooKeeper's internal cversion; deletes do not move it);
- a multi applies whole or not at all: ops before the failing one answer None, the failing
  one its outcome, the ones after it ``Unavailable`` (kazoo's RuntimeInconsistency);
- every write request takes a zxid, refused ones too (:attr:`MemoryZooKeeper.zxid` counts
  transactions as ``zkq bench`` reads the leader's);
- watches are kazoo's: one set of callbacks per path and kind for each session, fired once.
  A data watch (``get``, ``exists`` even of a missing node) fires on change, creation and
  deletion, a child watch (``get_children``) on a child's creation or deletion and on the
  node's deletion; when a session's connection drops or it ends, each of its watches
  fires once with a ``NONE`` event and is gone.

**Watch delivery.** Each session has one event thread, as a ZooKeeper client has: its
callbacks run there, one at a time, in the order of the writes that fired them (one global
order, as zxids give).  Events are queued once the write has applied, while it still holds
the tree, so two writers never swap their events and a callback that reads sees at least
what the write left.  Callbacks never run on the writer's thread or inside the write; as
with kazoo, one may run before or after the write returns to its caller (ZooKeeper orders
a session's events, not one client's events against another's replies).
:meth:`MemoryZooKeeper.settle` waits until every callback queued so far has run.
Connection states reach :meth:`ZkSession._on_state` synchronously, on the thread that
injected the fault.

**Faults.** :meth:`expire` ends a session (its ephemerals go, watches fire; the client goes
LOST, then CONNECTED as a new session), :meth:`disconnect` / :meth:`reconnect` drop and
restore a connection (SUSPENDED: requests raise :class:`ConnectionLost`), and
:meth:`lose_next_reply` applies a session's next write but answers ConnectionLost, the
"lost reply" of a connection dropped after the server committed.  A request larger than
ZooKeeper's buffer (about 1 MiB) drops the connection unapplied, as the server does.

**Not emulated:** the network and its timing, ``sync``, ACLs, quotas, TTL and container
nodes, chroots, read-only mode, and a request made while disconnected waiting for the
connection (here it raises ConnectionLost at once).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zkq.coordinator.config import ZkSettings
from zkq.coordinator.errors import Unavailable
from zkq.coordinator.zk.errors import (
    BadVersion,
    ConnectionLost,
    NodeExists,
    NoNode,
    NotEmpty,
    TransactionFailed,
)
from zkq.coordinator.zk.ops import Check, Create, Delete, Op
from zkq.coordinator.zk.session import EventType, OpResult, Stat, Watch, WatchEvent

if TYPE_CHECKING:
    from zkq.coordinator.zk.memory_session import MemorySession

#: ZooKeeper's jute.maxbuffer: a larger request closes the connection, unapplied
MAX_REQUEST_BYTES = 1024 * 1024
#: session ids as server 1 of an ensemble makes them (its id in the top byte)
FIRST_SESSION_ID = (1 << 56) + 1


class ManualClock:
    """A wall clock that moves only when told: inject it where ``time.time`` is read."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def refused(name: str, path: str | None = None) -> Unavailable:
    """What :func:`kazoo_session.translate` makes of an error that is not an outcome."""
    return Unavailable(f"ZooKeeper refused the request: {name}: {path or ''}")


@dataclass
class _Node:
    data: bytes
    owner: int  # the session id of an ephemeral, else 0
    created: float
    modified: float
    version: int = 0
    creates: int = 0  # children ever created here: the next sequence number
    children: set[str] = field(default_factory=set)

    def stat(self) -> Stat:
        return Stat(
            version=self.version,
            ephemeral_owner=self.owner,
            num_children=len(self.children),
            data_length=len(self.data),
            created=self.created,
            modified=self.modified,
        )


def _parent_and_name(path: str) -> tuple[str, str]:
    if not path.startswith("/"):
        raise ValueError(f"a ZooKeeper path starts with '/': {path!r}")
    parent, _, name = path.rpartition("/")
    if "//" in path or "\0" in path:
        raise refused("BadArgumentsError", path)
    return parent or "/", name


_Fired = list[tuple[str, EventType]]
_Undo = list[Callable[[], None]]


class MemoryZooKeeper:
    """One ZooKeeper tree in memory; every :class:`MemorySession` made on it shares it."""

    def __init__(
        self, clock: Callable[[], float] = time.time, max_request_bytes: int = MAX_REQUEST_BYTES
    ) -> None:
        """``clock``: the wall clock of the nodes' stats (:class:`ManualClock` in tests)."""
        self.clock = clock
        self.max_request_bytes = max_request_bytes
        #: increments with every write request, applied or refused, as ZooKeeper's does
        self.zxid = 0
        self._lock = threading.RLock()
        now = self._now()
        self._nodes: dict[str, _Node] = {"/": _Node(b"", 0, now, now)}
        self._sessions: dict[int, MemorySession] = {}  # live sessions by id
        self._clients: list[MemorySession] = []  # every session made here, for settle()
        self._ids = itertools.count(FIRST_SESSION_ID)
        for path in ("/zookeeper", "/zookeeper/config", "/zookeeper/quota"):
            self._create(0, path, b"", False, [], [])

    def session(self, settings: ZkSettings | None = None, name: str = "zkq") -> MemorySession:
        """A new session on this tree (not yet started), with ``settings`` (a
        :class:`~zkq.coordinator.config.ZkSettings`; by default root ``/zkq``)."""
        from zkq.coordinator.zk.memory_session import MemorySession

        return MemorySession(self, settings, name)

    def _now(self) -> float:
        # ZooKeeper keeps milliseconds
        return int(self.clock() * 1000) / 1000

    # -- sessions (called by MemorySession) ----------------------------------------------
    def open(self, session: MemorySession) -> int:
        with self._lock:
            session_id = next(self._ids)
            self.zxid += 1  # createSession is a transaction
            self._sessions[session_id] = session
            if session not in self._clients:
                self._clients.append(session)
            session._link_up = True
            return session_id

    def close(self, session: MemorySession, notify: bool = True) -> None:
        """End ``session``'s ZooKeeper session: its ephemerals go and others' watches fire;
        its own watches fire NONE (``notify``) or are dropped unheard (the client stopped)."""
        with self._lock:
            session_id = session._session_id
            if session_id is None or self._sessions.pop(session_id, None) is None:
                return
            self.zxid += 1  # closeSession (or the expiry) is a transaction
            undo: _Undo = []
            fired: _Fired = []
            owned = [p for p, node in self._nodes.items() if node.owner == session_id]
            for path in sorted(owned, key=lambda p: -p.count("/")):
                self._delete(path, -1, undo, fired)
            self._drop_watches(session, notify)
            self._fire(fired)

    def _drop_watches(self, session: MemorySession, notify: bool = True) -> None:
        """The connection dropped: each watch fires NONE once and is forgotten (kazoo)."""
        calls = [
            (watch, WatchEvent(EventType.NONE, None))
            for table in (session._child_watches, session._data_watches)
            for watches in table.values()
            for watch in watches
        ]
        session._child_watches.clear()
        session._data_watches.clear()
        session._link_up = False
        if session._events is not None and notify:
            session._events.put(calls)

    def alive(self, session: MemorySession) -> bool:
        """Whether ``session`` holds a ZooKeeper session (connected or not)."""
        with self._lock:
            return session._session_id in self._sessions

    def _live(self, session: MemorySession) -> int:
        session_id = session._session_id
        if session_id is None or session_id not in self._sessions or not session._link_up:
            raise ConnectionLost(f"ZooKeeper is unreachable ({session.state}); retry later")
        return session_id

    # -- reads ------------------------------------------------------------------------------
    def get(self, session: MemorySession, path: str, watch: Watch | None) -> tuple[bytes, Stat]:
        with self._lock:
            self._live(session)
            node = self._nodes.get(path)
            if node is None:
                raise NoNode(path)
            if watch is not None:
                session._data_watches.setdefault(path, {})[watch] = None
            return node.data, node.stat()

    def get_children(self, session: MemorySession, path: str, watch: Watch | None) -> list[str]:
        with self._lock:
            self._live(session)
            node = self._nodes.get(path)
            if node is None:
                raise NoNode(path)
            if watch is not None:
                session._child_watches.setdefault(path, {})[watch] = None
            return list(node.children)  # in no particular order, as ZooKeeper's

    def exists(self, session: MemorySession, path: str, watch: Watch | None) -> Stat | None:
        with self._lock:
            self._live(session)
            if watch is not None:  # also on a missing node: it fires when created
                session._data_watches.setdefault(path, {})[watch] = None
            node = self._nodes.get(path)
            return None if node is None else node.stat()

    # -- writes -----------------------------------------------------------------------------
    def write(
        self, session: MemorySession, ops: Sequence[Op], sequence: bool = False, multi: bool = True
    ) -> list[OpResult]:
        """Apply ``ops`` as one transaction for ``session``.  ``multi``: answer as a multi
        (:class:`TransactionFailed`); else ``ops`` is one op and its outcome is raised."""
        lost = False
        try:
            with self._lock:
                session_id = self._live(session)
                size = sum(len(op.path) + len(getattr(op, "value", b"")) + 16 for op in ops)
                if size > self.max_request_bytes:
                    lost = True  # the server closes the connection, unapplied
                    raise ConnectionLost(f"request of {size} bytes is over jute.maxbuffer")
                self.zxid += 1
                kind = "multi" if multi else type(ops[0]).__name__.lower()
                lost = session._lose_reply.pop(kind, False)
                return self._transaction(session_id, ops, sequence, multi)
        finally:
            if lost:
                self.disconnect(session)
                self.reconnect(session)
                raise ConnectionLost("the connection dropped before the reply came")

    def _transaction(
        self, session_id: int, ops: Sequence[Op], sequence: bool, multi: bool
    ) -> list[OpResult]:
        undo: _Undo = []
        fired: _Fired = []
        results: list[OpResult] = []
        for index, op in enumerate(ops):
            try:
                results.append(self._apply(session_id, op, sequence, undo, fired))
            except (NoNode, NodeExists, BadVersion, NotEmpty, Unavailable) as error:
                for step in reversed(undo):
                    step()
                if not multi:
                    raise
                after = refused("RuntimeInconsistency")
                answers = [None] * index + [error] + [after] * (len(ops) - index - 1)
                raise TransactionFailed(index, error, answers) from None
        self._fire(fired)
        return results

    def _apply(
        self, session_id: int, op: Op, sequence: bool, undo: _Undo, fired: _Fired
    ) -> OpResult:
        if isinstance(op, Create):
            owner = session_id if op.ephemeral else 0
            return self._create(owner, op.path, op.value, sequence, undo, fired)
        if isinstance(op, Delete):
            self._delete(op.path, op.version, undo, fired)
            return None
        node = self._nodes.get(op.path)
        if node is None:
            raise NoNode(op.path)
        if op.version != -1 and op.version != node.version:
            raise BadVersion(op.path)
        if isinstance(op, Check):
            return None
        old = (node.data, node.version, node.modified)

        def restore() -> None:
            node.data, node.version, node.modified = old

        node.data, node.version, node.modified = op.value, node.version + 1, self._now()
        undo.append(restore)
        fired.append((op.path, EventType.CHANGED))
        return node.stat()

    def _create(
        self,
        owner: int,
        path: str,
        value: bytes,
        sequence: bool,
        undo: _Undo,
        fired: _Fired,
    ) -> str:
        parent_path, name = _parent_and_name(path)
        parent = self._nodes.get(parent_path)
        if parent is None:
            raise NoNode(path)
        if sequence:
            name += f"{parent.creates:010d}"
            path += f"{parent.creates:010d}"
        elif not name:
            raise refused("BadArgumentsError", path)
        if path in self._nodes:
            raise NodeExists(path)
        if parent.owner:
            raise refused("NoChildrenForEphemeralsError", path)
        now = self._now()
        self._nodes[path] = _Node(value, owner, now, now)
        parent.children.add(name)
        parent.creates += 1

        def remove() -> None:
            del self._nodes[path]
            parent.children.discard(name)
            parent.creates -= 1

        undo.append(remove)
        fired.extend([(path, EventType.CREATED), (parent_path, EventType.CHILD)])
        return path

    def _delete(self, path: str, version: int, undo: _Undo, fired: _Fired) -> None:
        parent_path, name = _parent_and_name(path)
        parent = self._nodes.get(parent_path)
        node = self._nodes.get(path)
        if parent is None or node is None or path == "/":
            raise NoNode(path)
        if version != -1 and version != node.version:
            raise BadVersion(path)
        if node.children:
            raise NotEmpty(path)
        del self._nodes[path]
        parent.children.discard(name)

        def restore() -> None:
            self._nodes[path] = node
            parent.children.add(name)

        undo.append(restore)
        fired.extend([(path, EventType.DELETED), (parent_path, EventType.CHILD)])

    def _fire(self, fired: _Fired) -> None:
        """Queue each fired watch on its session's event thread, in the writes' order."""
        for session in self._sessions.values():
            calls: list[tuple[Watch, WatchEvent]] = []
            for path, kind in fired:
                # as kazoo: a callback that is both a data and a child watch of a deleted
                # node is called once for each
                watches: list[Watch] = []
                if kind != EventType.CHILD:
                    watches.extend(session._data_watches.pop(path, {}))
                if kind in (EventType.CHILD, EventType.DELETED):
                    watches.extend(session._child_watches.pop(path, {}))
                calls.extend((watch, WatchEvent(kind, path)) for watch in watches)
            if session._events is not None:
                session._events.put(calls)

    # -- faults -------------------------------------------------------------------------------
    def expire(self, session: MemorySession, reconnect: bool = True) -> None:
        """End ``session``'s ZooKeeper session as the ensemble does when it times out: its
        ephemerals go and watches fire; the client sees LOST and, with ``reconnect``,
        CONNECTED under a new session id (else it stays LOST until :meth:`reconnect`)."""
        self.close(session)
        session._lost()
        if reconnect:
            session._connect()

    def disconnect(self, session: MemorySession) -> None:
        """Drop ``session``'s connection (SUSPENDED): its session lives on, with its
        ephemerals; its watches fire NONE and are gone; requests raise ConnectionLost."""
        with self._lock:
            if not session._link_up:
                return
            self._drop_watches(session)
        session._suspended()

    def reconnect(self, session: MemorySession) -> None:
        """Restore ``session``'s connection: CONNECTED, in the same session if it is still
        alive, else (expired meanwhile) in a new one."""
        with self._lock:
            alive = session._session_id in self._sessions
            if alive and session._link_up:
                return
            if alive:
                session._link_up = True
        if alive:
            session._reconnected()
        else:
            session._connect()

    def lose_next_reply(self, session: MemorySession, request: str = "multi") -> None:
        """``session``'s next ``request`` (``multi``, ``create``, ``setdata``, ``delete``)
        is applied (or refused) as usual, but its answer is lost: the connection drops and
        comes back, and the caller gets :class:`ConnectionLost`.  It takes no lock, so a
        test may arm it while it holds the tree (:meth:`locked`)."""
        session._lose_reply[request] = True  # one dict store: atomic

    # -- for tests --------------------------------------------------------------------------
    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every watch callback queued so far has run (and what they fired)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [s._events for s in self._clients if s._events is not None]
            if all(t.idle(0) for t in threads):
                return
            for thread in threads:
                if not thread.idle(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"watch callbacks still running after {timeout:g}s")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the tree: no request of any session is answered meanwhile."""
        with self._lock:
            yield


__all__ = ["MAX_REQUEST_BYTES", "ManualClock", "MemoryZooKeeper", "refused"]

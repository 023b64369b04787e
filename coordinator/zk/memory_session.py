""":class:`~zkq.coordinator.zk.session.ZkSession` over a
:class:`~zkq.coordinator.zk.memory.MemoryZooKeeper`: what :class:`KazooSession` is over
kazoo, for unit tests.  The semantics (and what is not emulated) are in
:mod:`zkq.coordinator.zk.memory`.

What kazoo does on the client side is done here as kazoo does it: ``create(makepath=True)``
makes missing parents after a ``NoNode``, ``ensure_path`` creates each missing ancestor,
``delete(recursive=True)`` lists and deletes depth first (not atomically, and a missing node
is no error), and ``get_many`` gives up with :class:`Timeout` once its deadline has passed.

The election is kazoo's ``Election`` in substance: an ephemeral sequential node per
contender (``<uuid>__lock__<seq>``, its data the identifier); the lowest leads, each other
watches its predecessor.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence

from zkq.coordinator.config import ZkSettings
from zkq.coordinator.errors import Timeout, Unavailable
from zkq.coordinator.zk.errors import ConnectionLost, NodeExists, NoNode
from zkq.coordinator.zk.memory import MemoryZooKeeper
from zkq.coordinator.zk.ops import Create, Delete, Op, SetData
from zkq.coordinator.zk.session import (
    ConnectionState,
    Election,
    OpResult,
    Stat,
    Watch,
    WatchEvent,
    ZkSession,
)

log = logging.getLogger(__name__)


class EventThread:
    """One session's event thread: its watch callbacks, one at a time, in order."""

    def __init__(self, name: str) -> None:
        self._items: deque[tuple[Watch, WatchEvent] | None] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=f"{name}-events", daemon=True)
        self._thread.start()

    def put(self, calls: Sequence[tuple[Watch, WatchEvent]]) -> None:
        if calls:
            with self._cond:
                self._items.extend(calls)
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._items))
                item = self._items.popleft()
                self._busy = item is not None
                if item is None:
                    self._cond.notify_all()
                    return
            watch, event = item
            try:
                watch(event)
            except Exception:  # as kazoo's handler: a callback's bug stops no other callback
                log.exception("watch callback failed")
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._busy, timeout)

    def close(self) -> None:
        """Deliver what is queued, then end (joined unless called from a callback)."""
        with self._cond:
            self._items.append(None)
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(5.0)


class MemorySession(ZkSession):
    """One client of a :class:`MemoryZooKeeper`: a process's session, in memory."""

    def __init__(
        self, zk: MemoryZooKeeper, settings: ZkSettings | None = None, name: str = "zkq"
    ) -> None:
        super().__init__(settings or ZkSettings(hosts="memory"), name)
        self.zk = zk
        # the rest is the tree's to read and write, under its lock
        self._session_id: int | None = None
        self._link_up = False
        self._events: EventThread | None = None
        self._data_watches: dict[str, dict[Watch, None]] = {}
        self._child_watches: dict[str, dict[Watch, None]] = {}
        self._lose_reply: dict[str, bool] = {}

    # -- the session (states reported synchronously, on the caller's thread) ------------
    def _connect(self) -> None:
        if self.zk.alive(self):
            return  # started already: kazoo's start() is a no-op then too
        if self._events is None:
            self._events = EventThread(self.name)
        self._session_id = self.zk.open(self)
        self._on_state(ConnectionState.CONNECTED)

    def _lost(self) -> None:
        self._on_state(ConnectionState.LOST)

    def _suspended(self) -> None:
        self._on_state(ConnectionState.SUSPENDED)

    def _reconnected(self) -> None:
        self._on_state(ConnectionState.CONNECTED)

    def stop(self, timeout: float = 0.0) -> None:
        # nothing here waits on a network: close at once, on the caller's thread, so that
        # unit tests see the session gone when stop() returns
        self._close()

    def _close(self) -> None:
        if self._session_id is not None:
            self.zk.close(self, notify=False)
            self._session_id = None
            self._on_state(ConnectionState.LOST)
        events, self._events = self._events, None
        if events is not None:
            events.close()

    @property
    def session_id(self) -> int | None:
        return self._session_id

    # -- one node ---------------------------------------------------------------------------
    def get(self, path: str, watch: Watch | None = None) -> tuple[bytes, Stat]:
        return self.zk.get(self, path, watch)

    def get_children(self, path: str, watch: Watch | None = None) -> list[str]:
        return self.zk.get_children(self, path, watch)

    def forget_watch(self, path: str, watch: Watch) -> None:
        with self.zk._lock:
            self._data_watches.get(path, {}).pop(watch, None)

    def data_watches(self, path: str) -> int:
        with self.zk._lock:
            return len(self._data_watches.get(path, {}))

    def exists(self, path: str, watch: Watch | None = None) -> Stat | None:
        return self.zk.exists(self, path, watch)

    def create(
        self,
        path: str,
        value: bytes = b"",
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        if not isinstance(value, bytes):
            raise TypeError("value must be a byte string")
        op = Create(path, value, ephemeral)
        try:
            return str(self.zk.write(self, [op], sequence=sequence, multi=False)[0])
        except NoNode:
            if not makepath:
                raise
        self.ensure_path(path.rsplit("/", 1)[0] or "/")
        return str(self.zk.write(self, [op], sequence=sequence, multi=False)[0])

    def set(self, path: str, value: bytes, version: int = -1) -> Stat:
        result = self.zk.write(self, [SetData(path, value, version)], multi=False)[0]
        assert isinstance(result, Stat)
        return result

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> None:
        if not recursive:
            self.zk.write(self, [Delete(path, version)], multi=False)
            return
        try:
            children = self.get_children(path)
        except NoNode:
            return
        for child in children:
            self.delete(f"{path.rstrip('/')}/{child}", recursive=True)
        with contextlib.suppress(NoNode):
            self.zk.write(self, [Delete(path)], multi=False)

    def ensure_path(self, path: str) -> None:
        if self.exists(path) is not None:
            return
        parts = [p for p in path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            try:
                self.zk.write(self, [Create("/" + "/".join(parts[:depth]))], multi=False)
            except NodeExists:
                continue

    # -- many nodes ------------------------------------------------------------------------
    def multi(self, ops: Sequence[Op]) -> list[OpResult]:
        return self.zk.write(self, list(ops))

    def _await(self, deadline: float | None) -> None:
        """As kazoo's asynchronous reads: queued while disconnected, and a deadline that
        has passed is a :class:`Timeout` whatever the answer."""
        if deadline is None:
            return
        left = deadline - time.monotonic()
        if left <= 0 or not self.connected.wait(left) or time.monotonic() >= deadline:
            raise Timeout("ZooKeeper did not answer before the deadline; retry later")

    def get_many(
        self, paths: Sequence[str], deadline: float | None = None
    ) -> dict[str, tuple[bytes, Stat] | None]:
        self._await(deadline)
        out: dict[str, tuple[bytes, Stat] | None] = {}
        for path in paths:
            try:
                out[path] = self.get(path)
            except NoNode:
                out[path] = None
        return out

    def get_children_many(
        self, paths: Sequence[str], watch: Watch | None = None, deadline: float | None = None
    ) -> dict[str, list[str] | None]:
        self._await(deadline)
        out: dict[str, list[str] | None] = {}
        for path in paths:
            try:
                out[path] = self.get_children(path, watch)
            except NoNode:
                out[path] = None
        return out

    def apply_acl_many(self, paths: Sequence[str]) -> dict[str, bool]:
        # the tree in memory keeps no ACLs: only whether each node is there
        return {path: self.exists(path) is not None for path in paths}

    # -- recipes ---------------------------------------------------------------------------
    def election(self, path: str, identifier: str) -> Election:
        return MemoryElection(self, path, identifier)


class MemoryElection(Election):
    """Contenders under ``path``: the lowest sequence leads, each other waits for its
    predecessor to go.  A lost session raises :class:`ConnectionLost` (contend again); a
    dropped connection is waited out, the node kept, as kazoo's lock recipe does."""

    def __init__(self, session: MemorySession, path: str, identifier: str) -> None:
        self._session = session
        self._path = path
        self._identifier = identifier
        self._prefix = f"{uuid.uuid4().hex}__lock__"
        self._cancelled = False
        self._woken = False
        self._node: str | None = None

    @property
    def node(self) -> str | None:
        return self._node

    def cancel(self) -> None:
        self._wake(lambda: setattr(self, "_cancelled", True))

    def _wake(self, change: Callable[[], None] | None = None) -> None:
        with self._session.changed:
            if change is not None:
                change()
            self._woken = True
            self._session.changed.notify_all()

    def _on_predecessor(self, _event: WatchEvent) -> None:
        self._wake()

    def run(self, lead: Callable[[], None]) -> None:
        session = self._session
        generation = session.generation
        try:  # as kazoo's lock: the node first, then a look at whether we were cancelled
            self._node = session.create(
                f"{self._path}/{self._prefix}",
                self._identifier.encode(),
                ephemeral=True,
                sequence=True,
                makepath=True,
            )
            while not self._wait_turn(generation):
                pass
            if self._cancelled:
                return
            lead()
        finally:
            self._leave(generation)

    def _wait_turn(self, generation: int) -> bool:
        """One look at the contenders: True when we lead (or were cancelled)."""
        session = self._session
        if self._cancelled:
            return True
        if session.generation != generation:
            raise ConnectionLost("the session ended while contending")
        with session.changed:
            self._woken = False
        dropped = False
        try:
            ordered = sorted(session.get_children(self._path), key=lambda n: n[-10:])
            ours = (self._node or "").rsplit("/", 1)[-1]
            if ours not in ordered:
                raise ConnectionLost("our election node is gone")
            at = ordered.index(ours)
            if at == 0:
                return True
            if session.exists(f"{self._path}/{ordered[at - 1]}", self._on_predecessor) is None:
                return False
        except ConnectionLost:
            if session.generation != generation:
                raise
            dropped = True  # our node lives on with the session: wait for the connection
        with session.changed:
            session.changed.wait_for(
                lambda: (
                    self._woken
                    or self._cancelled
                    or session.generation != generation
                    or (dropped and session.connected.is_set())
                )
            )
        return False

    def _leave(self, generation: int) -> None:
        """Delete our node, waiting out a dropped connection for up to a session timeout
        (after which the node goes with the session anyway)."""
        node, self._node = self._node, None
        session = self._session
        if node is None or session.generation != generation:
            return  # never made, or gone with the session

        def attempt() -> None:
            if session.generation == generation:
                session.delete(node)

        with contextlib.suppress(NoNode, Unavailable):  # gone, or it goes with the session
            session.retry(attempt, time.monotonic() + session.session_timeout, "leave election")


__all__ = ["EventThread", "MemoryElection", "MemorySession"]

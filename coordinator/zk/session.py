"""One ZooKeeper session per process: the connection-state policy every process shares, and
the primitive operations zkq uses, as an interface.

:class:`ZkSession` holds the policy and declares the operations; an implementation supplies
them (:class:`~zkq.coordinator.zk.kazoo_session.KazooSession` over kazoo, the only module that
imports kazoo).  Everything it answers is zkq's own: :class:`Stat`, :class:`WatchEvent`, the
outcomes and transient errors of :mod:`zkq.coordinator.zk.errors`.

Connection states, and what each means for zkq:

- CONNECTED: commit freely.
- SUSPENDED (connection lost, session maybe alive): take no new work, dispatch nothing,
  keep running jobs but commit nothing until reconnected.  Every watch fires with a
  ``NONE`` event and is forgotten, so whoever watched must list again on reconnect.
- LOST (session expired): every ephemeral node of ours is gone (registration, claims,
  election node).  :attr:`ZkSession.generation` increments; a worker abandons its jobs and
  registers again, a coordinator steps down and rejoins the election.
- Reconnected after either: re-read state; watches may have missed events, so reconcile
  rather than trust the last notification.

The implementation reports state changes through :meth:`ZkSession._on_state`, on its own
thread, which must never block: it only flips flags and sets events.  The client reconnects
forever: a process never dies because ZooKeeper is away; it waits and reports itself not
ready.

Stopping is the exception to waiting forever.  A process told to stop calls
:meth:`ZkSession.begin_stop`: from then on no request of this session waits past the stop
deadline (one already waiting is woken too), and at the deadline the session closes itself,
which fails what kazoo's own recipes still wait for (the election lock's release).  What
could not be released then (ephemeral nodes, the session itself) is left to session expiry
on the ensemble, which is what it is for.
"""

from __future__ import annotations

import enum
import functools
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from zkq.coordinator.acl import AclPolicy
from zkq.coordinator.config import ZkSettings
from zkq.coordinator.errors import Unavailable
from zkq.coordinator.zk.errors import ConnectionLost, zk_errors
from zkq.coordinator.zk.ops import Op

log = logging.getLogger(__name__)
T = TypeVar("T")

#: how long a stopping process gives ZooKeeper to take its last requests (releases, a
#: worker's last commits, the close) before it gives up on them; with the close after it,
#: every process ends well within ten seconds of being told to
STOP_GRACE = 5.0
#: how long the close itself may take once the grace is over
CLOSE_TIMEOUT = 2.0
#: ... and when the session is not connected
CLOSE_DISCONNECTED = 0.5


class ConnectionState(enum.StrEnum):
    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"


class EventType(enum.StrEnum):
    CREATED = "CREATED"
    DELETED = "DELETED"
    CHANGED = "CHANGED"  # a node's data
    CHILD = "CHILD"  # a node's children
    NONE = "NONE"  # the connection changed: the watch is gone, list again


@dataclass(frozen=True)
class WatchEvent:
    """What a watch is called with; ``path`` is None for a ``NONE`` event."""

    type: EventType
    path: str | None


#: a watch callback; called on the session's thread, so it must not block
Watch = Callable[[WatchEvent], None]


@dataclass(frozen=True)
class Stat:
    """What zkq reads of a node's stat."""

    version: int
    ephemeral_owner: int  # the session id that owns an ephemeral node; 0 if persistent
    num_children: int
    data_length: int
    created: float  # seconds since the epoch
    modified: float


#: what each op of a committed multi answers: a create its path, a set its stat
OpResult = str | Stat | None


@dataclass
class Backoff:
    """Exponential backoff with full jitter."""

    initial: float = 0.05
    maximum: float = 2.0
    _current: float = 0.0

    def next(self) -> float:
        self._current = min(self.maximum, (self._current * 2) or self.initial)
        return random.uniform(self._current / 2, self._current)

    def reset(self) -> None:
        self._current = 0.0


class Election(ABC):
    """Leader election among the contenders under one path: an ephemeral sequential node
    each; the lowest leads, each other watches its predecessor, so a change wakes one."""

    @abstractmethod
    def run(self, lead: Callable[[], None]) -> None:
        """Contend; once elected call ``lead()``, and leave the election when it returns.
        Returns at once, without leading, once :meth:`cancel` was called.  Raises
        :class:`ConnectionLost` when the session fails under it: contend again."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop contending; interrupts a standby's wait (not a leader's ``lead``)."""

    @property
    @abstractmethod
    def node(self) -> str | None:
        """The full path of our contender node while we hold one; the leader uses it as
        its fencing node (an ephemeral of its session)."""


class ZkSession(ABC):
    """One ZooKeeper session for a process, and the flags of its connection-state policy."""

    def __init__(self, settings: ZkSettings, name: str = "zkq") -> None:
        self.settings = settings
        self.name = name
        #: the ACL of each node this session creates (None: open to all); an implementation
        #: applies it at every create (the in-memory one keeps no ACLs and ignores it)
        self.acl = AclPolicy(settings.layout, settings.acl) if settings.acl else None
        self.connected = threading.Event()
        self.changed = threading.Condition()
        #: increments each time the session is lost (a new session begins)
        self.generation = 0
        #: increments at every (re)connection: whoever watches re-lists when it moves
        self.connections = 0
        self._last_state: ConnectionState | None = None
        self._listeners: list[Callable[[str], None]] = []
        #: ``time.monotonic()`` after which no request waits any more; None until stopping
        self.stop_deadline: float | None = None
        self._closer: threading.Timer | None = None

    # -- the policy ---------------------------------------------------------------------
    # the implementation calls this on its own thread: flip flags, notify, never block
    def _on_state(self, state: ConnectionState) -> None:
        with self.changed:
            if state == ConnectionState.CONNECTED:
                self.connections += 1
                self.connected.set()
            elif state == ConnectionState.SUSPENDED:
                self.connected.clear()
            elif state == ConnectionState.LOST:
                self.connected.clear()
                self.generation += 1
            self._last_state = state
            self.changed.notify_all()
        for listener in list(self._listeners):
            try:
                listener(str(state))
            except Exception:  # a listener's bug must not break the session's thread
                log.exception("connection listener failed")

    def on_state_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(state)`` on every change; it must not block."""
        self._listeners.append(listener)

    @property
    def state(self) -> str:
        return str(self._last_state) if self._last_state else "CONNECTING"

    def start(self, wait: float | None = None) -> bool:
        """Start connecting in the background; optionally wait for the first connection."""
        self._connect()
        if wait is not None:
            return self.connected.wait(wait)
        return True

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self.connected.wait(timeout)

    # -- stopping -------------------------------------------------------------------------
    def begin_stop(self, grace: float = STOP_GRACE) -> None:
        """The process is stopping: no request waits past ``grace`` seconds from now, and
        the session closes itself then unless :meth:`stop` closed it first.

        Safe from a signal handler (it starts a timer thread and notifies waiters; it sends
        nothing).  Calling it again only ever brings the deadline closer.
        """
        deadline = time.monotonic() + max(0.0, grace)
        with self.changed:
            if self.stop_deadline is not None and self.stop_deadline <= deadline:
                return
            self.stop_deadline = deadline
            # wake whoever waits for the connection: their wait now has an end
            self.changed.notify_all()
            closer, self._closer = self._closer, threading.Timer(grace, self._close_at_deadline)
        if closer is not None:
            closer.cancel()
        self._closer.daemon = True
        self._closer.start()

    @property
    def stopping(self) -> bool:
        return self.stop_deadline is not None

    def _close_at_deadline(self) -> None:
        log.warning(
            "ZooKeeper at %s did not let %s stop in time (%s): closing the session; "
            "what it held goes when the ensemble expires it",
            self.settings.hosts,
            self.name,
            self.state,
        )
        self.stop(CLOSE_TIMEOUT)

    def _limit(self, deadline: float | None) -> float | None:
        """The earlier of ``deadline`` and the stop deadline (None: neither is set)."""
        stop = self.stop_deadline
        if stop is None:
            return deadline
        return stop if deadline is None else min(deadline, stop)

    def _wait_connected_until(self, deadline: float | None) -> bool:
        """Wait for the connection until ``deadline`` or the stop deadline, whichever comes
        first, also when the stop begins during the wait."""
        with self.changed:
            while not self.connected.is_set():
                limit = self._limit(deadline)
                if limit is None:
                    self.changed.wait()
                    continue
                left = limit - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
            return True

    def ensure_paths(self, paths: Sequence[str]) -> None:
        for path in paths:
            with zk_errors():
                self.retry(functools.partial(self.ensure_path, path))

    def _can_send(self) -> bool:
        """Whether a request sent now goes out rather than waiting for a connection."""
        return self.connected.is_set()

    def retry(
        self,
        attempt: Callable[[], T],
        deadline: float | None = None,
        what: str = "ZooKeeper request",
    ) -> T:
        """Call ``attempt`` until it stops raising :class:`ConnectionLost` or ``deadline``
        (a ``time.monotonic()`` value) passes, waiting for the connection in between.

        ``attempt`` must be safe to repeat: the ``_inner`` attempt of each public method,
        which treats NodeExists / NoNode / BadVersion as outcomes to inspect.

        With a deadline, no attempt starts while disconnected: a request made while
        disconnected is queued, and a synchronous call waits for the reconnection with no
        time limit, so the deadline would not hold.  (Requests in flight when a connection
        drops fail at once with ConnectionLost.)  Once the session is stopping, the stop
        deadline bounds every retry the same way, with or without a deadline of its own.
        """
        backoff = Backoff()
        while True:
            bounded = self._limit(deadline) is not None
            if (
                bounded
                and not self._can_send()
                and (not self._wait_connected_until(deadline) or not self._can_send())
            ):
                raise Unavailable(
                    f"ZooKeeper at {self.settings.hosts} is unreachable ({self.state}); retry later"
                )
            try:
                return attempt()
            except ConnectionLost as exc:
                limit = self._limit(deadline)
                remaining = None if limit is None else limit - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise
                log.debug("%s: %s; retrying", what, exc)
                pause = backoff.next()
                if remaining is not None:
                    pause = min(pause, remaining)
                # waiting for the connection is the useful part of the pause
                self.connected.wait(pause)
                self._wait_connected_until(deadline)

    # -- the session ----------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None:
        """Start connecting in the background; report states through :meth:`_on_state`."""

    def stop(self, timeout: float = STOP_GRACE) -> None:
        """Close the session (its ephemeral nodes go at once); never raises, and returns
        within ``timeout`` seconds even if ZooKeeper is unreachable.  Requests still
        waiting fail by then too."""
        if not self.connected.is_set():
            # nothing to tell an ensemble we cannot reach (it expires the session itself):
            # do not wait for the client's connection loop to give up
            timeout = min(timeout, CLOSE_DISCONNECTED)
        self.begin_stop(timeout)
        with self.changed:
            closer = self._closer
        closing = threading.Thread(target=self._close, name=f"{self.name}-close", daemon=True)
        closing.start()
        closing.join(timeout)
        if closing.is_alive():
            log.warning(
                "the ZooKeeper session of %s did not close within %gs; leaving it to expire",
                self.name,
                timeout,
            )
        elif closer is not None and threading.current_thread() is not closer:
            closer.cancel()

    @abstractmethod
    def _close(self) -> None:
        """Close the session; may block while ZooKeeper is unreachable (:meth:`stop`
        bounds it); never raises."""

    @property
    @abstractmethod
    def session_id(self) -> int | None:
        """The id of the current session (what :attr:`Stat.ephemeral_owner` holds for our
        ephemeral nodes), or None before the first connection."""

    @property
    def session_timeout(self) -> float:
        """The timeout the ensemble negotiated (what the client asked, until connected)."""
        return self.settings.session_timeout

    # -- one node ---------------------------------------------------------------------------
    # NoNode, NodeExists, BadVersion, NotEmpty are answers (coordinator.zk.errors); a lost
    # connection raises ConnectionLost, after which a write may or may not have applied.
    @abstractmethod
    def get(self, path: str, watch: Watch | None = None) -> tuple[bytes, Stat]:
        """Data and stat; ``watch`` fires once on the node's next change or deletion."""

    @abstractmethod
    def get_children(self, path: str, watch: Watch | None = None) -> list[str]:
        """Child names; ``watch`` fires once when a child is added or removed."""

    @abstractmethod
    def exists(self, path: str, watch: Watch | None = None) -> Stat | None:
        """The node's stat, or None."""

    @abstractmethod
    def create(
        self,
        path: str,
        value: bytes = b"",
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        """Create a node; returns its path (with the sequence number, if ``sequence``)."""

    @abstractmethod
    def set(self, path: str, value: bytes, version: int = -1) -> Stat:
        """Write data if the node is at ``version`` (-1: any)."""

    @abstractmethod
    def delete(self, path: str, version: int = -1, recursive: bool = False) -> None:
        """Delete a node if at ``version`` (-1: any); ``recursive`` takes its subtree."""

    @abstractmethod
    def ensure_path(self, path: str) -> None:
        """Create the node and its missing parents, empty and persistent."""

    @abstractmethod
    def forget_watch(self, path: str, watch: Watch) -> None:
        """Stop keeping the data watch ``watch`` on ``path`` (set by :meth:`get`) that its
        setter no longer wants: it will not be called, nor held in memory until the node
        changes.  Client-side only; the ensemble drops its watch at the next change."""

    @abstractmethod
    def data_watches(self, path: str) -> int:
        """How many data watch callbacks this session holds on ``path``."""

    # -- many nodes ------------------------------------------------------------------------
    @abstractmethod
    def multi(self, ops: Sequence[Op]) -> list[OpResult]:
        """Run ``ops`` as one transaction; all apply or none.  Raises
        :class:`~zkq.coordinator.zk.errors.TransactionFailed` when rolled back."""

    @abstractmethod
    def get_many(
        self, paths: Sequence[str], deadline: float | None = None
    ) -> dict[str, tuple[bytes, Stat] | None]:
        """Pipelined reads (one round trip for all): per path its data and stat, or None
        for a node that does not exist.  With a ``deadline`` (``time.monotonic()``), gives
        up with :class:`~zkq.coordinator.errors.Timeout` when it passes, connected or not."""

    @abstractmethod
    def get_children_many(
        self, paths: Sequence[str], watch: Watch | None = None, deadline: float | None = None
    ) -> dict[str, list[str] | None]:
        """Pipelined listings, as :meth:`get_many`; ``watch`` is set on each path."""

    @abstractmethod
    def apply_acl_many(self, paths: Sequence[str]) -> dict[str, bool]:
        """Pipelined: give each existing node the ACL its path has in :attr:`acl`; per path,
        whether it existed.  For nodes made before ACLs (``zkq acl apply``)."""

    # -- recipes ---------------------------------------------------------------------------
    @abstractmethod
    def election(self, path: str, identifier: str) -> Election:
        """A contender in the election under ``path``, named ``identifier`` (its node's
        data, which shows who leads)."""


__all__ = [
    "Backoff",
    "ConnectionState",
    "Election",
    "EventType",
    "OpResult",
    "Stat",
    "Watch",
    "WatchEvent",
    "ZkSession",
]

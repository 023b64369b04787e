"""The boundary with kazoo: one client per process, its connection-state policy, and the
one place where kazoo's exceptions become zkq's (:mod:`zkq.coordinator.errors`).

Connection states, and what each means for zkq (the policy every process shares):

- CONNECTED: commit freely.
- SUSPENDED (connection lost, session maybe alive): take no new work, dispatch nothing,
  keep running jobs but commit nothing until reconnected.  kazoo fires every watch with a
  ``NONE`` event and forgets it here, so whoever watched must list again on reconnect.
- LOST (session expired): every ephemeral node of ours is gone (registration, claims,
  election node).  :attr:`ZkSession.generation` increments; a worker abandons its jobs and
  registers again, a coordinator steps down and rejoins the election.
- Reconnected after either: re-read state; watches may have missed events, so reconcile
  rather than trust the last notification.

The kazoo listener only flips flags and sets events: kazoo calls it on its own thread, which
must never block.  The client reconnects forever (``max_tries=-1``): a process never dies
because ZooKeeper is away; it waits and reports itself not ready.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    RolledBackError,
    SessionExpiredError,
    ZookeeperError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from zkq.coordinator.config import ZkSettings
from zkq.coordinator.errors import Timeout, Unavailable, ZkqError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: what a caller may see as an outcome of one attempt (not a crash)
OUTCOME_ERRORS = (NodeExistsError, NoNodeError, BadVersionError, NotEmptyError)
#: what means "try again once connected"
TRANSIENT_ERRORS = (
    ConnectionLoss,
    ConnectionClosedError,
    OperationTimeoutError,
    SessionExpiredError,
    KazooTimeoutError,
)


def translate(exc: BaseException) -> ZkqError:
    """kazoo's exception as zkq's; only this module imports kazoo's exception types for that."""
    if isinstance(exc, ZkqError):
        return exc
    if isinstance(exc, KazooTimeoutError | OperationTimeoutError):
        return Timeout(f"ZooKeeper did not answer in time ({type(exc).__name__}); retry later")
    if isinstance(exc, TRANSIENT_ERRORS):
        return Unavailable(f"ZooKeeper is unreachable ({type(exc).__name__}); retry later")
    if isinstance(exc, KazooException | ZookeeperError):
        return Unavailable(f"ZooKeeper refused the request: {type(exc).__name__}: {exc}")
    return ZkqError(f"{type(exc).__name__}: {exc}")


@contextmanager
def zk_errors() -> Iterator[None]:
    """Run a block, raising zkq errors instead of kazoo's."""
    try:
        yield
    except ZkqError:
        raise
    except (KazooException, ZookeeperError, KazooTimeoutError) as exc:
        raise translate(exc) from exc


class TransactionFailed(Exception):
    """A multi was rolled back; ``index`` names the op that failed and ``error`` why.

    Internal to the coordinator package: callers decide what the failure means (fenced,
    already done, parent missing) and raise a zkq error.
    """

    def __init__(self, index: int, error: BaseException, results: Sequence[Any]) -> None:
        super().__init__(f"op {index} failed: {type(error).__name__}")
        self.index = index
        self.error = error
        self.results = results


Op = tuple[str, tuple[Any, ...], dict[str, Any]]


def op_create(path: str, value: bytes = b"", ephemeral: bool = False) -> Op:
    return ("create", (path, value), {"ephemeral": ephemeral})


def op_delete(path: str, version: int = -1) -> Op:
    return ("delete", (path,), {"version": version})


def op_set(path: str, value: bytes, version: int = -1) -> Op:
    return ("set_data", (path, value), {"version": version})


def op_check(path: str, version: int) -> Op:
    return ("check", (path, version), {})


def commit(client: KazooClient, ops: Sequence[Op], timeout: float | None = None) -> list[Any]:
    """Run ``ops`` as one multi.  Raises :class:`TransactionFailed` when it is rolled back,
    and kazoo's transient errors (ConnectionLoss and co) as they are: after a ConnectionLoss
    nobody knows whether the multi was applied, so only the caller can tell what to check.
    """
    tx = client.transaction()
    for name, args, kwargs in ops:
        getattr(tx, name)(*args, **kwargs)
    results = tx.commit_async().get(timeout=timeout)
    for index, result in enumerate(results):
        if isinstance(result, Exception) and not isinstance(result, RolledBackError):
            raise TransactionFailed(index, result, results)
    return list(results)


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


class ZkSession:
    """One kazoo client for a process plus the flags of its connection-state policy."""

    def __init__(self, settings: ZkSettings, name: str = "zkq", handler: Any = None) -> None:
        """``handler``: a kazoo handler; pass ``kazoo.handlers.gevent.SequentialGeventHandler()``
        in a gevent process (gunicorn's gevent workers), else kazoo's threads are used."""
        self.settings = settings
        self.name = name
        self.client = KazooClient(
            hosts=settings.hosts,
            timeout=settings.session_timeout,
            handler=handler,
            # reconnect forever: waiting out an outage is the policy, dying is not
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            logger=logging.getLogger(f"kazoo.{name}"),
        )
        self.connected = threading.Event()
        self.changed = threading.Condition()
        #: increments each time the session is lost (a new session begins)
        self.generation = 0
        #: increments at every (re)connection: whoever watches re-lists when it moves
        self.connections = 0
        self._last_state: KazooState | None = None
        self._listeners: list[Callable[[str], None]] = []
        self.client.add_listener(self._on_state)

    # kazoo calls this on its own thread: flip flags, notify, never block
    def _on_state(self, state: KazooState) -> None:
        with self.changed:
            if state == KazooState.CONNECTED:
                self.connections += 1
                self.connected.set()
            elif state == KazooState.SUSPENDED:
                self.connected.clear()
            elif state == KazooState.LOST:
                self.connected.clear()
                self.generation += 1
            self._last_state = state
            self.changed.notify_all()
        for listener in list(self._listeners):
            try:
                listener(str(state))
            except Exception:  # a listener's bug must not break kazoo's thread
                log.exception("connection listener failed")

    def on_state_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(state)`` on every change; it must not block."""
        self._listeners.append(listener)

    @property
    def state(self) -> str:
        return str(self._last_state) if self._last_state else "CONNECTING"

    @property
    def session_timeout(self) -> float:
        """The timeout the ensemble negotiated (what the client asked, until connected)."""
        negotiated = getattr(self.client, "_session_timeout", None)
        return (negotiated / 1000.0) if negotiated else self.settings.session_timeout

    def start(self, wait: float | None = None) -> bool:
        """Start connecting in the background; optionally wait for the first connection."""
        self.client.start_async()
        if wait is not None:
            return self.connected.wait(wait)
        return True

    def stop(self) -> None:
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # closing a client whose ensemble is gone may raise; nothing to do
            log.debug("error while closing the ZooKeeper client", exc_info=True)

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self.connected.wait(timeout)

    def ensure_paths(self, paths: Sequence[str]) -> None:
        for path in paths:
            with zk_errors():
                self.retry(functools.partial(self.client.ensure_path, path))

    def retry(
        self,
        attempt: Callable[[], T],
        deadline: float | None = None,
        what: str = "ZooKeeper request",
    ) -> T:
        """Call ``attempt`` until it stops raising a transient error or ``deadline`` (a
        ``time.monotonic()`` value) passes, waiting for the connection in between.

        ``attempt`` must be safe to repeat: the ``_inner`` attempt of each public method,
        which treats NodeExists / NoNode / BadVersion as outcomes to inspect.

        With a deadline, no attempt starts while disconnected: kazoo queues a request made
        while disconnected and its synchronous calls wait for the reconnection with no
        time limit, so the deadline would not hold.  (Requests in flight when a connection
        drops fail at once with ConnectionLoss.)
        """
        backoff = Backoff()
        while True:
            # kazoo's own flag: it drops before our listener runs, so no request is queued
            # in the moment between the connection dropping and our flags flipping
            if deadline is not None and not self.client.connected:
                left = deadline - time.monotonic()
                if left <= 0 or not self.connected.wait(left) or not self.client.connected:
                    raise Unavailable(
                        f"ZooKeeper at {self.settings.hosts} is unreachable "
                        f"({self.state}); retry later"
                    )
            try:
                return attempt()
            except TRANSIENT_ERRORS as exc:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise translate(exc) from exc
                log.debug("%s: %s; retrying", what, type(exc).__name__)
                pause = backoff.next()
                if remaining is not None:
                    pause = min(pause, remaining)
                # waiting for the connection is the useful part of the pause
                self.connected.wait(pause)
                if not self.connected.is_set():
                    self.connected.wait(remaining if remaining is not None else None)

"""kazoo's vocabulary as zkq's, for :mod:`.kazoo_session`: exceptions (:func:`translate`,
always ``raise ... from exc``), stats, watch callbacks and ACLs.  With that module, the only
place of zkq that imports kazoo."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import WatchedEvent, ZnodeStat
from kazoo.security import ACL, Id

from zkq.coordinator.acl import Grant
from zkq.coordinator.errors import Unavailable
from zkq.coordinator.zk.errors import (
    BadVersion,
    ConnectionLost,
    NodeExists,
    NoNode,
    NotEmpty,
    NotPermitted,
    RequestTimedOut,
)
from zkq.coordinator.zk.session import EventType, Stat, Watch, WatchEvent

#: what kazoo raises that the boundary translates
KAZOO_ERRORS = (KazooException, KazooTimeoutError)
#: kazoo's outcome errors and ours
OUTCOMES: tuple[tuple[type[Exception], type[Exception]], ...] = (
    (NoNodeError, NoNode),
    (NodeExistsError, NodeExists),
    (BadVersionError, BadVersion),
    (NotEmptyError, NotEmpty),
)
#: what means "the request may or may not have been applied; try again once connected"
# (ConnectionClosedError is a SessionExpiredError)
TRANSIENT = (ConnectionLoss, OperationTimeoutError, SessionExpiredError, KazooTimeoutError)


def translate(exc: BaseException, path: str | None = None) -> BaseException:
    """kazoo's exception as zkq's: an outcome, a transient error, or :class:`Unavailable`."""
    for theirs, ours in OUTCOMES:
        if isinstance(exc, theirs):
            return ours(path)
    name = type(exc).__name__
    if isinstance(exc, NoAuthError):
        return NotPermitted(path)
    if isinstance(exc, KazooTimeoutError | OperationTimeoutError):
        return RequestTimedOut(f"ZooKeeper did not answer in time ({name}); retry later")
    if isinstance(exc, TRANSIENT):
        return ConnectionLost(f"ZooKeeper is unreachable ({name}); retry later")
    return Unavailable(f"ZooKeeper refused the request: {name}: {exc}")


@contextmanager
def kazoo_errors(path: str | None = None) -> Iterator[None]:
    try:
        yield
    except KAZOO_ERRORS as exc:
        raise translate(exc, path) from exc


def zk_stat(stat: ZnodeStat) -> Stat:
    return Stat(
        version=stat.version,
        ephemeral_owner=stat.ephemeralOwner,
        num_children=stat.numChildren,
        data_length=stat.dataLength,
        created=stat.ctime / 1000,
        modified=stat.mtime / 1000,
    )


class Watcher:
    """A zkq watch as kazoo calls it.  Equal for equal callbacks, because kazoo keeps a set
    of watchers per path: the dispatcher re-reads a path many times between two events,
    and each read must not add another watcher that fires again."""

    __slots__ = ("watch",)

    def __init__(self, watch: Watch) -> None:
        self.watch = watch

    def __call__(self, event: WatchedEvent) -> None:
        self.watch(WatchEvent(EventType(event.type), event.path or None))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Watcher) and other.watch == self.watch

    def __hash__(self) -> int:
        return hash(self.watch)


def kazoo_acl(grants: Sequence[Grant]) -> list[ACL]:
    return [ACL(int(g.perms), Id(g.scheme, g.identity)) for g in grants]


def kazoo_watcher(watch: Watch | None) -> Watcher | None:
    return None if watch is None else Watcher(watch)

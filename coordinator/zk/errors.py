"""What a :class:`~zkq.coordinator.zk.session.ZkSession` raises, whatever implements it.

::

    ZkOutcome                 an answer about one node, for the caller to inspect
    ├── NoNode
    ├── NodeExists
    ├── BadVersion
    └── NotEmpty
    TransactionFailed         a multi rolled back: the index of the op that failed, and why
    NotPermitted              (a ZkqError) the ACL refuses this process's credential (NoAuth)
    Unavailable               (coordinator.errors) ZooKeeper refused or cannot be reached
    └── ConnectionLost        transient: the request may or may not have been applied
        └── RequestTimedOut   also a Timeout: no answer in time

Outcomes are not crashes, as in kazoo's recipes: a ``create`` that finds ``NodeExists``
after a lost reply compares contents, a ``delete`` that finds ``NoNode`` is done already.
They are not :class:`~zkq.coordinator.errors.ZkqError` either: what one means (a job not found,
a write fenced) is for the caller to say.  :func:`zk_errors` turns one that nobody
inspected into a zkq error, as kazoo's were before this boundary existed.

:class:`ConnectionLost` is the one to retry (:meth:`ZkSession.retry` does): after it nobody
knows whether a write went through, so only the caller can tell what to check.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from zkq.coordinator.errors import Timeout, Unavailable, ZkqError


class ZkOutcome(Exception):
    """ZooKeeper's answer about one node; ``path`` names it when known."""

    def __init__(self, path: str | None = None) -> None:
        super().__init__(path or "")
        self.path = path


class NoNode(ZkOutcome):
    """The node (or, for a create, its parent) does not exist."""


class NodeExists(ZkOutcome):
    """A create found the node there already."""


class BadVersion(ZkOutcome):
    """The node's version is not the one the write carried."""


class NotEmpty(ZkOutcome):
    """A delete found children under the node."""


class TransactionFailed(Exception):
    """A multi was rolled back; ``index`` names the op that failed and ``error`` why (a
    :class:`ZkOutcome`, usually).  ``results`` holds what each op answered.

    Internal to the coordinator package: callers decide what the failure means (fenced,
    already done, parent missing) and raise a zkq error.
    """

    def __init__(self, index: int, error: BaseException, results: Sequence[Any]) -> None:
        super().__init__(f"op {index} failed: {type(error).__name__}")
        self.index = index
        self.error = error
        self.results = results


class NotPermitted(ZkqError):
    """ZooKeeper refused the request (NoAuth): the node's ACL does not allow this process's
    credential to do it.  Not transient: retrying cannot help; the credential is the wrong
    role's, or missing (:mod:`zkq.coordinator.acl` says which role may do what)."""

    code = "zk_not_permitted"

    def __init__(self, path: str | None = None, message: str | None = None) -> None:
        super().__init__(
            message
            or f"ZooKeeper refused this credential at {path or 'a node'} (NoAuth): use the "
            "credential of a role allowed to do this (ZKQ_ZK_AUTH_FILE; an operator who "
            "acts needs the coordinator's)"
        )
        self.path = path

    @classmethod
    def from_message(cls, message: str) -> NotPermitted:
        return cls(None, message)


class ConnectionLost(Unavailable):
    """The connection dropped (or the session ended) before the reply came: the request
    may or may not have been applied.  Try again once connected."""


class RequestTimedOut(ConnectionLost, Timeout):
    """No answer in time; as with a lost connection, the request may have been applied."""

    code = Timeout.code


@contextmanager
def zk_errors() -> Iterator[None]:
    """Run a block, raising an outcome nobody inspected as a zkq error."""
    try:
        yield
    except ZkOutcome as exc:
        raise Unavailable(f"ZooKeeper refused the request: {type(exc).__name__}: {exc}") from exc


__all__ = [
    "BadVersion",
    "ConnectionLost",
    "NoNode",
    "NodeExists",
    "NotEmpty",
    "NotPermitted",
    "RequestTimedOut",
    "TransactionFailed",
    "ZkOutcome",
    "zk_errors",
]

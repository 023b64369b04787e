""":class:`~zkq.coordinator.zk.session.ZkSession` over kazoo: the only module of zkq that imports
kazoo, and so the one place where kazoo's exceptions become zkq's (:func:`translate`, always
``raise ... from exc``), its stats become :class:`Stat` and its watch events
:class:`WatchEvent`.

One ``KazooClient`` per session.  It reconnects forever (``max_tries=-1``): waiting out an
outage is the policy, dying is not.  In a gevent process (gunicorn's gevent workers) it runs
on kazoo's gevent handler instead of kazoo's threads.

The leader election is kazoo's ``Election`` recipe (a lock: ephemeral sequential nodes,
each contender watching its predecessor).

ACLs: with role identities configured, every node this session creates gets the ACL of
:class:`~zkq.coordinator.acl.AclPolicy` for its path (``create``, each level of
``ensure_path``, multi ``Create``); kazoo's ``default_acl`` is the strictest one, for the
nodes kazoo's recipes create on their own (the election's).  The credential goes in kazoo's
``auth_data``, which kazoo sends again on every reconnection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar, cast

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    CancelledError,
    NodeExistsError,
    RolledBackError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import ZnodeStat
from kazoo.recipe.election import Election as KazooElection
from kazoo.retry import KazooRetry
from kazoo.security import ACL

from zkq.coordinator.config import ZkSettings
from zkq.coordinator.errors import Timeout
from zkq.coordinator.zk.errors import (
    ConnectionLost,
    NoNode,
    TransactionFailed,
)
from zkq.coordinator.zk.kazoo_translate import (
    KAZOO_ERRORS,
    Watcher,
    kazoo_acl,
    kazoo_errors,
    kazoo_watcher,
    translate,
    zk_stat,
)
from zkq.coordinator.zk.ops import Check, Create, Delete, Op, SetData
from zkq.coordinator.zk.outages import KazooLog
from zkq.coordinator.zk.session import (
    ConnectionState,
    Election,
    OpResult,
    Stat,
    Watch,
    ZkSession,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: how often a request waiting for its answer looks whether the process began to stop
_STOP_POLL = 1.0

# a probe asking whether a node is up must not print kazoo's narration of its failures
_quiet = logging.getLogger("coordinator.zk.quiet")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class _Election(Election):
    """kazoo's ``Election`` (its lock), with its blocking steps bounded by the session's
    stop deadline: the lock's acquire and release call kazoo synchronously, and with the
    ensemble unreachable they would wait for a reconnection without limit."""

    def __init__(self, session: KazooSession, path: str, identifier: str) -> None:
        self._session = session
        self._election = KazooElection(session.client, path, identifier)

    def run(self, lead: Callable[[], None]) -> None:
        lock = self._election.lock
        try:
            if not self._session.bounded(lock.acquire):
                return
        except CancelledError:
            return
        except KAZOO_ERRORS as exc:
            raise translate(exc) from exc
        try:
            lead()
        finally:
            try:
                self._session.bounded(lock.release)
            except CancelledError:
                pass
            except ConnectionLost:
                # stopping, and ZooKeeper did not take the delete in time: the node goes
                # with the session, which is closing
                log.warning("left the election without deleting our node (stop deadline)")
            except KAZOO_ERRORS as exc:
                raise translate(exc) from exc

    def cancel(self) -> None:
        self._election.cancel()

    @property
    def node(self) -> str | None:
        lock = self._election.lock
        return f"{lock.path}/{lock.node}" if lock.node else None


class KazooSession(ZkSession):
    """One kazoo client for a process."""

    def __init__(
        self, settings: ZkSettings, name: str = "zkq", gevent: bool = False, quiet: bool = False
    ) -> None:
        """``gevent``: use kazoo's gevent handler, for a gevent-patched process (gunicorn's
        gevent workers); else kazoo's threads.  ``quiet``: none of kazoo's logging."""
        super().__init__(settings, name)
        self.gevent = gevent
        handler: Any = None
        self._timeouts: tuple[type[BaseException], ...] = (KazooTimeoutError,)
        if gevent:
            import gevent as gevent_module
            from kazoo.handlers.gevent import SequentialGeventHandler

            handler = SequentialGeventHandler()
            # gevent's AsyncResult raises gevent's own Timeout, not the handler's subclass
            self._timeouts = (handler.timeout_exception, gevent_module.Timeout)
        #: what kazoo logs goes through this: it keeps the last connection error, and
        #: hushes kazoo's narration of its attempts for a service that reports outages
        self.narration = KazooLog(logging.getLogger(f"kazoo.{name}"))
        #: kazoo's client, for what measures kazoo itself (``zkq bench``) and tests that
        #: break connections on purpose; zkq's own code goes through the methods below
        self.client = KazooClient(
            hosts=settings.hosts,
            timeout=settings.session_timeout,
            handler=handler,
            # kazoo adds the credential again after every reconnection
            auth_data=[("digest", settings.auth)] if settings.auth else None,
            default_acl=kazoo_acl(self.acl.strictest) if self.acl else None,
            # reconnect forever: waiting out an outage is the policy, dying is not
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            logger=_quiet if quiet else self.narration,
        )
        self.client.add_listener(self._on_kazoo_state)

    # kazoo calls this on its own thread: flip flags, never block
    def _on_kazoo_state(self, state: KazooState) -> None:
        self._on_state(ConnectionState(str(state)))

    def _can_send(self) -> bool:
        # kazoo's own flag: it drops before our listener runs, so no request is queued in
        # the moment between the connection dropping and our flags flipping
        return bool(self.client.connected)

    def _connect(self) -> None:
        self.client.start_async()

    def _close(self) -> None:
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # closing a client whose ensemble is gone may raise; nothing to do
            log.debug("error while closing the ZooKeeper client", exc_info=True)

    @property
    def session_id(self) -> int | None:
        client_id = self.client.client_id
        return int(client_id[0]) if client_id else None

    @property
    def session_timeout(self) -> float:
        negotiated = getattr(self.client, "_session_timeout", None)
        return (negotiated / 1000.0) if negotiated else self.settings.session_timeout

    # -- one node ---------------------------------------------------------------------------
    def get(self, path: str, watch: Watch | None = None) -> tuple[bytes, Stat]:
        with kazoo_errors(path):
            raw, stat = self._sync(self.client.get_async(path, watch=kazoo_watcher(watch)))
        return raw, zk_stat(stat)

    def get_children(self, path: str, watch: Watch | None = None) -> list[str]:
        with kazoo_errors(path):
            request = self.client.get_children_async(path, watch=kazoo_watcher(watch))
            return list(self._sync(request))

    def exists(self, path: str, watch: Watch | None = None) -> Stat | None:
        with kazoo_errors(path):
            stat = self._sync(self.client.exists_async(path, watch=kazoo_watcher(watch)))
        return None if stat is None else zk_stat(stat)

    def create(
        self,
        path: str,
        value: bytes = b"",
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        if makepath:
            self.ensure_path(path.rsplit("/", 1)[0])
        with kazoo_errors(path):
            return str(
                self._sync(
                    self.client.create_async(
                        path, value, acl=self._acl(path), ephemeral=ephemeral, sequence=sequence
                    )
                )
            )

    def set(self, path: str, value: bytes, version: int = -1) -> Stat:
        with kazoo_errors(path):
            return zk_stat(self._sync(self.client.set_async(path, value, version=version)))

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> None:
        with kazoo_errors(path):
            if recursive:  # kazoo's recursive delete is synchronous only (tests, tools)
                self.client.delete(path, version=version, recursive=True)
            else:
                self._sync(self.client.delete_async(path, version=version))

    def ensure_path(self, path: str) -> None:
        # not kazoo's ensure_path, which gives every level the same ACL.  Ask before
        # creating: ZooKeeper checks CREATE on the parent before it looks for the node, so
        # a create of an existing node by a role that may not create there is refused
        # (NoAuth) rather than answered NodeExists
        with kazoo_errors(path):
            if path in ("", "/") or self._sync(self.client.exists_async(path)):
                return
            self.ensure_path(path.rsplit("/", 1)[0])
            with suppress(NodeExistsError):  # made by another process meanwhile
                self._sync(self.client.create_async(path, b"", acl=self._acl(path)))

    def _acl(self, path: str) -> list[ACL] | None:
        """The ACL of a node created at ``path``; None: kazoo's default (open to all
        without a policy)."""
        return kazoo_acl(self.acl.acl_for(path)) if self.acl else None

    # kazoo 2.11 has no removeWatches: its set of callbacks per path is the only place a
    # watch that never fires can be let go of (the ensemble's own goes at the next change)
    def forget_watch(self, path: str, watch: Watch) -> None:
        watchers = self.client._data_watchers.get(path)
        if watchers is not None:
            watchers.discard(Watcher(watch))

    def data_watches(self, path: str) -> int:
        return len(self.client._data_watchers.get(path, ()))

    # -- many nodes ------------------------------------------------------------------------
    def multi(self, ops: Sequence[Op]) -> list[OpResult]:
        tx = self.client.transaction()
        for op in ops:
            if isinstance(op, Create):
                tx.create(op.path, op.value, acl=self._acl(op.path), ephemeral=op.ephemeral)
            elif isinstance(op, Delete):
                tx.delete(op.path, version=op.version)
            elif isinstance(op, SetData):
                tx.set_data(op.path, op.value, version=op.version)
            elif isinstance(op, Check):
                tx.check(op.path, op.version)
            else:  # pragma: no cover - Op is a closed union
                raise TypeError(f"not an op: {op!r}")
        with kazoo_errors():
            results = self._sync(tx.commit_async())
        answers: list[Any] = []
        failed: int | None = None
        for index, result in enumerate(results):
            if isinstance(result, RolledBackError):
                answers.append(None)
            elif isinstance(result, Exception):
                answers.append(translate(result, ops[index].path))
                failed = index if failed is None else failed
            elif isinstance(result, ZnodeStat):
                answers.append(zk_stat(result))
            else:
                answers.append(result if isinstance(result, str) else None)
        if failed is not None:
            raise TransactionFailed(failed, answers[failed], answers)
        return answers

    def bounded(self, call: Callable[[], T]) -> T:
        """``call()``, a synchronous kazoo call we cannot make asynchronous (a recipe's),
        waited for no longer than the stop deadline once the session is stopping; then it
        raises :class:`ConnectionLost` and the call is left behind on its daemon thread,
        to fail when the session closes."""
        outcome: list[Any] = []
        done = threading.Event()

        def target() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as exc:  # handed to the caller below
                outcome.append((False, exc))
            finally:
                done.set()

        threading.Thread(target=target, name=f"{self.name}-recipe", daemon=True).start()
        while True:
            stop = self.stop_deadline
            wait = _STOP_POLL if stop is None else stop - time.monotonic()
            if done.wait(max(0.0, wait)):
                break
            if self.stop_deadline is not None and time.monotonic() >= self.stop_deadline:
                raise ConnectionLost("ZooKeeper did not answer before this process's stop deadline")
        ok, value = outcome[0]
        if not ok:
            raise value
        return cast(T, value)

    def _sync(self, request: Any) -> Any:
        """What kazoo's synchronous calls do (wait for the answer), but bounded once the
        session is stopping: kazoo queues a request made while disconnected and waits for
        the reconnection with no limit, which would hold a stopping process forever.

        Until the stop begins it waits in slices of :data:`_STOP_POLL`, only to notice the
        stop; a request answered in time is returned as it arrives.
        """
        while True:
            stop = self.stop_deadline
            wait = _STOP_POLL if stop is None else max(0.0, stop - time.monotonic())
            try:
                return request.get(timeout=wait)
            except self._timeouts as exc:
                if self.stop_deadline is not None and time.monotonic() >= self.stop_deadline:
                    raise ConnectionLost(
                        "ZooKeeper did not answer before this process's stop deadline"
                    ) from exc

    def _wait(self, request: Any, deadline: float | None, path: str) -> Any:
        timeout = None
        deadline = self._limit(deadline)
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise Timeout("ZooKeeper did not answer before the deadline; retry later")
        try:
            return request.get(timeout=timeout)
        except self._timeouts as exc:
            raise Timeout("ZooKeeper did not answer before the deadline; retry later") from exc
        except KAZOO_ERRORS as exc:
            raise translate(exc, path) from exc

    def get_many(
        self, paths: Sequence[str], deadline: float | None = None
    ) -> dict[str, tuple[bytes, Stat] | None]:
        # send every request before waiting on any: one round trip for all of them, and
        # asynchronous requests queue (rather than block) while disconnected, so the
        # deadline bounds the whole call
        with kazoo_errors():
            requests = [(path, self.client.get_async(path)) for path in paths]
        out: dict[str, tuple[bytes, Stat] | None] = {}
        for path, request in requests:
            try:
                raw, stat = self._wait(request, deadline, path)
            except NoNode:
                out[path] = None
                continue
            out[path] = (raw, zk_stat(stat))
        return out

    def get_children_many(
        self, paths: Sequence[str], watch: Watch | None = None, deadline: float | None = None
    ) -> dict[str, list[str] | None]:
        watcher = kazoo_watcher(watch)
        with kazoo_errors():
            requests = [(p, self.client.get_children_async(p, watch=watcher)) for p in paths]
        out: dict[str, list[str] | None] = {}
        for path, request in requests:
            try:
                out[path] = list(self._wait(request, deadline, path))
            except NoNode:
                out[path] = None
        return out

    def apply_acl_many(self, paths: Sequence[str]) -> dict[str, bool]:
        if self.acl is None:
            raise ValueError("no ACL policy: give every role's identity (ZKQ_ZK_ACL)")
        with kazoo_errors():
            requests = [(p, self.client.set_acls_async(p, self._acl(p) or [])) for p in paths]
        out: dict[str, bool] = {}
        for path, request in requests:
            try:
                self._wait(request, None, path)
            except NoNode:
                out[path] = False
                continue
            out[path] = True
        return out

    # -- recipes ---------------------------------------------------------------------------
    def election(self, path: str, identifier: str) -> Election:
        return _Election(self, path, identifier)


__all__ = ["KazooSession", "translate"]

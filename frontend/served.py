"""The job types the live workers serve, as one frontend process knows them: what a
submission's warning is made from (``warnings`` and ``Zkq-Warning``, see
:mod:`zkq.frontend.routes.jobs`).

Reading every registration per request would cost a round trip per worker on the hot path,
so each process keeps the set (:class:`ServedTypes`, one per :class:`~zkq.frontend.zk.ZkGate`,
so per gunicorn worker process, rebuilt after a fork with the session).  A child watch on
``workers`` marks it stale; the next submission lists ``workers`` again and reads only the
registrations it has not seen (pipelined).  Nothing is read when nothing changed.

Why the watch only marks: it runs on the session's thread (a greenlet under gevent), which
must not block, so the reading is done by the request that next needs the set.  Why no data
watch on each registration: a worker's types are written once, when it registers; the only
later change is a drain, and a draining worker still counts as serving here (see
:mod:`zkq.coordinator.serving`).  After a reconnection every watch is gone (the session's
policy), so a changed :attr:`~zkq.coordinator.zk.ZkSession.connections` counts as stale too.
"""

from __future__ import annotations

import logging

from zkq.coordinator.registration import BadRegistration, WorkerInfo
from zkq.coordinator.zk import WatchEvent, ZkSession, zk_errors

log = logging.getLogger(__name__)


class ServedTypes:
    def __init__(self, session: ZkSession) -> None:
        self.session = session
        self.layout = session.settings.layout
        #: worker id -> the types its registration lists (replaced whole, never mutated)
        self._workers: dict[str, frozenset[str]] = {}
        self._types: frozenset[str] = frozenset()  # their union
        self._stale = True
        self._connections = -1
        #: how many times the registrations were listed (for tests: a request that finds
        #: nothing changed reads nothing)
        self.refreshes = 0

    def _changed(self, _event: WatchEvent) -> None:
        self._stale = True

    def types(self, deadline: float) -> frozenset[str]:
        """The types some registered worker serves; reads ZooKeeper only when the workers
        changed since the last call.  Raises :class:`~zkq.coordinator.errors.Unavailable`
        (or its :class:`~zkq.coordinator.errors.Timeout`) when it cannot tell."""
        if self._stale or self._connections != self.session.connections:
            self._refresh(deadline)
        return self._types

    def _refresh(self, deadline: float) -> None:
        connections = self.session.connections
        # cleared before listing: a change during the read marks it stale again
        self._stale = False
        try:
            with zk_errors():
                listed = self.session.get_children_many(
                    [self.layout.workers], watch=self._changed, deadline=deadline
                )[self.layout.workers]
                ids = set(listed or [])
                new = sorted(ids - self._workers.keys())
                found = self.session.get_many(
                    [self.layout.worker(w) for w in new], deadline=deadline
                )
        except BaseException:
            self._stale = True
            raise
        workers = {w: types for w, types in self._workers.items() if w in ids}
        for worker_id in new:
            entry = found.get(self.layout.worker(worker_id))
            if entry is None:
                continue  # gone between the listing and the read
            try:
                workers[worker_id] = WorkerInfo.from_bytes(worker_id, entry[0]).types
            except BadRegistration as exc:
                log.warning("%s; counted as serving nothing", exc)
                workers[worker_id] = frozenset()
        self._workers = workers
        self._types = frozenset().union(*workers.values())
        self._connections = connections
        if listed is None:
            # no `workers` node yet (a fresh root: no worker or coordinator has started),
            # so no watch was set: read again next time, or the first worker goes unseen
            self._stale = True
        self.refreshes += 1


__all__ = ["ServedTypes"]

"""``zkq worker``: registers, watches its own inbox, claims and runs what it is given.

- Registration is one multi: ``inbox/<id>`` (persistent) and ``workers/<id>`` (ephemeral,
  with its types and slots).  A new session registers under a new id: the old id's jobs
  are the leader's to requeue.
- It watches only its own inbox and its own registration (an operator may set
  ``draining``); adding workers adds no watch anywhere else.
- It holds up to ``slots + prefetch`` assignments; its :class:`~zkq.worker.pipeline.Pipeline`
  claims them as slots free up and records how each attempt ended, grouping claims and
  ends into shared multis, each fenced by its job's version.
- SUSPENDED: start nothing; running handlers go on, their commits wait for the connection.
- LOST: running attempts are abandoned (their commits would be fenced anyway); the worker
  registers again and carries on.
- SIGTERM drains (no new claims, running jobs finish, then deregister); a second SIGTERM
  closes the session (so the leader requeues at once) and exits.
- A slot whose revoked handler could not be stopped is *lost* (thread pools,
  :mod:`zkq.worker.pools`): the registration says how many, so the leader assigns around
  them.  Once ``max_lost_slots`` are lost the worker drains (a drain does not wait for lost
  slots) and asks to be restarted (:attr:`Worker.restart_wanted`, :func:`restart_in_place`):
  only a new process image ends threads that will not stop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from zkq.coordinator.admission import SHORT, default_reserve
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.registration import BadRegistration, WorkerInfo
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import (
    ConnectionLost,
    Create,
    NodeExists,
    NoNode,
    TransactionFailed,
    WatchEvent,
    ZkSession,
    connect,
)
from zkq.coordinator.zk.outages import report_outages
from zkq.coordinator.zk.session import STOP_GRACE
from zkq.worker.inbox import Inbox
from zkq.worker.lost_slots import publish_lost_slots, rewrite_registration
from zkq.worker.metrics import WorkerMetrics
from zkq.worker.pipeline import Pipeline
from zkq.worker.pools import Pool, StopPolicy, make_pool
from zkq.worker.registry import Registry

log = logging.getLogger(__name__)
#: how long a draining worker must have been unable to record its jobs before it gives them
#: up (a blip of the connection must not cost running jobs)
_CUT_OFF = 1.0


class Worker:
    def __init__(
        self,
        config: ClusterConfig,
        registry: Registry,
        app: str | None = None,
        types: frozenset[str] | None = None,
        concurrency: int = 4,
        pool: str = "thread",
        prefetch: int | None = None,
        session: ZkSession | None = None,
        reserve: int | None = None,
        policy: StopPolicy | None = None,
        max_lost_slots: int | None = None,
    ) -> None:
        """``session``: the ZooKeeper session to use, by default one to ``config.zk``; it is
        the worker's from then on (:meth:`run` starts and stops it).  ``reserve``: slots
        kept for short types (:mod:`zkq.coordinator.admission`; None: the default).
        ``policy``: how a revoked handler is stopped; ``max_lost_slots`` (default half the
        slots, at least one): how many lost slots make the worker drain and ask for a
        restart."""
        unknown = (types or frozenset()) - registry.types
        if unknown:
            raise ValueError(f"no handler registered for: {', '.join(sorted(unknown))}")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.config = config
        self.layout = config.zk.layout
        self.types = types or registry.types
        if not self.types:
            raise ValueError("the app registers no handler: nothing to serve")
        self.slots = concurrency
        #: assignments held beyond the slots, so a slot that frees finds its next job
        #: already here instead of waiting a round trip through the leader
        self.prefetch = concurrency if prefetch is None else prefetch
        if self.prefetch < 0:
            raise ValueError("prefetch must be zero or more")
        self.lanes = {t: lane for t, lane in registry.lanes().items() if t in self.types}
        self.type_limits = {t: n for t, n in registry.type_limits().items() if t in self.types}
        # by default slots are kept back only for a type declared short here: with none,
        # a reserve would idle for nothing
        if reserve is None:
            reserve = default_reserve(concurrency) if SHORT in self.lanes.values() else 0
        self.reserve = reserve
        if not 0 <= self.reserve < concurrency:
            raise ValueError(
                f"--reserve {self.reserve} leaves no slot for long work: use less than "
                f"--concurrency ({concurrency})"
            )
        self.session = session or connect(config.zk, name="worker")
        self.store = JobStore(self.session, config.limits)
        self.policy = policy or StopPolicy()
        self.max_lost_slots = max(1, concurrency // 2) if max_lost_slots is None else max_lost_slots
        if self.max_lost_slots < 1:
            raise ValueError("max_lost_slots must be at least 1")
        self.metrics = WorkerMetrics(
            concurrency, lambda: self.pipeline.busy, lambda: self.pool.lost_slots
        )
        # the pool runs handlers from the registry just checked, in threads or processes
        self.pool: Pool = make_pool(
            pool, registry, app, concurrency, self.policy, self.metrics.revoked, self._on_lost
        )
        self.pool_kind = pool
        #: lost slots reached ``max_lost_slots``: the caller should restart the process
        self.restart_wanted = False
        self._lost_dirty = False
        self.worker_id: str | None = None
        self._registered_generation = -1
        self._pending_id: tuple[int, str] | None = None
        self._listed_connection = -1
        self._wake = threading.Event()
        self.inbox = Inbox(self.store, self._wake)
        self.pipeline = Pipeline(
            self.store,
            self.pool,
            concurrency,
            self.metrics,
            generation=lambda: self._registered_generation,
            release=self.inbox.release,
            stop_grace=self.policy.kill_grace,
        )
        self._registration_dirty = True
        self._announce_drain = False
        self._draining = threading.Event()
        self._stopped = threading.Event()
        #: the last stop gave running jobs up (ZooKeeper unreachable while draining)
        self.abandoned = False
        self._drain_began = 0.0
        self._stuck_since: float | None = None
        self.session.on_state_change(lambda _state: self._wake.set())

    # -- control --------------------------------------------------------------------------
    def drain(self) -> None:
        """Stop claiming; exit once running jobs are done.  Signal-handler safe."""
        if not self._draining.is_set():
            self._drain_began = time.monotonic()
        self._draining.set()
        self.pipeline.drain()
        self._announce_drain = True
        self._wake.set()

    def stop_now(self) -> None:
        """Close the session (the leader requeues our jobs at once) and stop the handlers."""
        self._draining.set()
        self.pool.shutdown(wait=False)
        closer = threading.Thread(target=self.session.stop, daemon=True)
        closer.start()
        closer.join(2.0)

    @property
    def held(self) -> int:
        """Assignments taken from the inbox and not yet let go (queued, running, recording)."""
        return len(self.inbox)

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> None:
        self.pipeline.start()
        # before the first attempt: one line every few seconds while disconnected
        report_outages(self.session, log)
        self.session.start()
        while not self._draining.is_set() and not self.session.wait_connected(1.0):
            pass
        if self.session.connected.is_set():
            self.session.ensure_paths(self.layout.shared_parents())
        abandoned = False
        while True:
            # lost slots never end by themselves: a drain does not wait for them
            if self._draining.is_set() and self.pipeline.idle_but(self.pool.lost_slots):
                break
            if self._drain_stuck():
                abandoned = True
                break
            self._wake.clear()
            if not self.session.connected.is_set():
                self._wake.wait(0.5)
                continue
            try:
                self._step()
            except ConnectionLost as exc:
                log.info("ZooKeeper unavailable (%s); waiting", exc)
                continue
            except ZkqError as exc:
                log.warning("worker step failed: %s", exc)
            self._wake.wait(0.5 if self._draining.is_set() else 1.0)
        # from here on nothing may wait on ZooKeeper past the grace
        self.session.begin_stop()
        if abandoned:
            log.warning(
                "ZooKeeper unreachable while draining: giving up %d job(s) to the leader's requeue",
                self.pipeline.outstanding,
            )
            # the committer may be waiting on ZooKeeper and handlers still running: do not
            # join them (their threads are daemons; the session's close fails their waits)
            self.pool.shutdown(wait=False)
        elif self.pool.lost_slots:
            self._deregister()  # the hung slot threads cannot be joined: leave them be
            self.pool.shutdown(wait=False)
        else:
            self._deregister()
            self.pipeline.stop()
            self.pool.shutdown(wait=True)
        self.session.stop()
        self.abandoned = abandoned
        self._stopped.set()
        log.info("worker stopped")

    def _drain_stuck(self) -> bool:
        """Whether a drain can no longer finish: its jobs must be recorded, which needs
        ZooKeeper, and without it the stop would wait for a reconnection without limit.

        Stuck: the drain is :data:`STOP_GRACE` old and for :data:`_CUT_OFF` (so not a blip)
        either the session has been disconnected or no handler has been running, so only
        the recording is left and ZooKeeper has not taken it (a partition the client has
        not noticed yet).  The jobs are then given up: the leader requeues them once our
        session expires, and their attempts are fenced, so a late commit cannot land.
        """
        if not self._draining.is_set():
            return False
        now = time.monotonic()
        if self.session.connected.is_set() and self.pipeline.busy > 0:
            self._stuck_since = None
            return False
        if self._stuck_since is None:
            self._stuck_since = now
        return now - self._stuck_since >= _CUT_OFF and now - self._drain_began >= STOP_GRACE

    def _step(self) -> None:
        if self._announce_drain:
            self._announce_drain = False
            self._mark_draining()
        if self.session.generation != self._registered_generation:
            if self._draining.is_set():
                return  # a draining worker does not come back under a new id
            self._register()
        if self.session.connections != self._listed_connection:
            # our watches were dropped with the connection: list again
            self._listed_connection = self.session.connections
            self.inbox.dirty = True
            self._registration_dirty = True
        if self._registration_dirty:
            self._registration_dirty = False
            self._watch_registration()
        if self._lost_dirty:
            self._lost_dirty = False
            self._publish_lost()
        if self.inbox.dirty and not self._draining.is_set():
            self._list_inbox()

    def _register(self) -> None:
        if self.worker_id is not None:
            abandoned = self.pipeline.outstanding
            if abandoned:
                log.warning(
                    "session lost: abandoning %d running job(s) of %s", abandoned, self.worker_id
                )
        generation = self.session.generation
        # one id per session: a registration retried after a lost reply must find the one
        # that may have gone through, not leave a ghost worker that nobody serves
        if self._pending_id is None or self._pending_id[0] != generation:
            self._pending_id = (
                generation,
                f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            )
        worker_id = self._pending_id[1]
        if self._registered_already(worker_id):
            self._registered(worker_id, generation)
            return
        info = WorkerInfo(
            id=worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            types=self.types,
            slots=self.slots,
            prefetch=self.prefetch,
            pool=self.pool_kind,
            started_at=time.time(),
            reserve=self.reserve,
            lanes=self.lanes,
            type_limits=self.type_limits,
            lost_slots=self.pool.lost_slots,
            cancel_grace=self.policy.cancel_grace,
            kill_grace=self.policy.kill_grace,
        )
        try:
            self.session.multi(
                [
                    Create(self.layout.inbox(worker_id)),
                    Create(self.layout.worker(worker_id), info.to_bytes(), ephemeral=True),
                ]
            )
        except TransactionFailed as failed:
            if not isinstance(failed.error, NodeExists | NoNode):
                raise
            self.session.ensure_paths(self.layout.shared_parents())
            return  # try again on the next step
        self._registered(worker_id, generation)

    def _registered_already(self, worker_id: str) -> bool:
        stat = self.session.exists(self.layout.worker(worker_id))
        return stat is not None and stat.ephemeral_owner == self.session.session_id

    def _registered(self, worker_id: str, generation: int) -> None:
        self.worker_id = worker_id
        self._registered_generation = generation
        self._listed_connection = -1
        log.info(
            "registered: %d slots (+%d prefetch, %d reserved for short work) for %s",
            self.slots,
            self.prefetch,
            self.reserve,
            ",".join(sorted(self.types)),
            extra={"worker_id": worker_id},
        )

    def _on_registration(self, _event: WatchEvent) -> None:
        self._registration_dirty = True
        self._wake.set()

    def _watch_registration(self) -> None:
        """An operator drains a worker by setting ``draining`` in its registration."""
        if self.worker_id is None:
            return
        try:
            raw, _ = self.session.get(
                self.layout.worker(self.worker_id), watch=self._on_registration
            )
            draining = WorkerInfo.from_bytes(self.worker_id, raw).draining
        except NoNode:
            return
        except BadRegistration as exc:  # not as we wrote it: someone edited it by hand
            log.warning("%s", exc)
            return
        if draining and not self._draining.is_set():
            log.info("asked to drain through ZooKeeper")
            self.drain()

    def _list_inbox(self) -> None:
        worker_id = self.worker_id
        if worker_id is None:
            return
        try:
            offered = self.inbox.new_assignments(worker_id, self._registered_generation)
        except NoNode:
            # our inbox is gone while we are registered (removed by hand, or by a leader
            # that took us for dead): nothing can be assigned to us, so start afresh
            log.warning("inbox of %s is missing: registering again", worker_id)
            self._deregister()
            self._registered_generation = -1
            self._wake.set()
            return
        if offered:
            self.pipeline.offer(offered)

    def _mark_draining(self) -> None:
        """Say in our registration that we drain, so the leader stops assigning to us at
        once and hands what we hold unstarted to other workers."""
        if self.worker_id is None:
            return
        path = self.layout.worker(self.worker_id)
        # refused only when it changed meanwhile: an operator drained us too, either way said
        rewrite_registration(self.session, path, self.worker_id, WorkerInfo.drained)

    def _on_lost(self, lost: int) -> None:
        """From a pool's thread: the count of lost slots changed."""
        self._lost_dirty = True
        self._wake.set()

    def _publish_lost(self) -> None:
        """Rewrite the registration with the lost slots (versioned, as a drain's is), then
        drain for a restart if too many are lost."""
        lost = self.pool.lost_slots
        if self.worker_id is not None:
            path = self.layout.worker(self.worker_id)
            self._lost_dirty = not publish_lost_slots(self.session, path, self.worker_id, lost)
        if lost >= self.max_lost_slots and not self._draining.is_set():
            log.warning("%d slot(s) lost to handlers that do not stop: draining to restart", lost)
            self.restart_wanted = True
            self.drain()

    def _deregister(self) -> None:
        if self.worker_id is None or not self.session.connected.is_set():
            return
        try:
            self.session.delete(self.layout.worker(self.worker_id))
            log.info("deregistered %s", self.worker_id)
        except NoNode:
            pass
        except ConnectionLost:
            log.info("could not deregister; the session's end will do it")

    # -- one attempt ----------------------------------------------------------------------

"""``zkq coordinator``: two or more instances, one elected leader that dispatches.

Leadership is the session's :class:`~zkq.coordinator.zk.session.Election` (an ephemeral
sequential node; the lowest leads, each other watches its predecessor, so a change wakes one
standby, not all).  The leader runs a :class:`~zkq.coordinator.dispatcher.Dispatcher` until:

- it is told to stop (SIGTERM): it leaves the election at once, deleting its node, so the
  next standby leads within a round trip instead of a session timeout.  The stop is
  bounded: with ZooKeeper unreachable that delete (and a pruner's listing) would wait for a
  reconnection forever, so the session gets a stop deadline
  (:meth:`~zkq.coordinator.zk.session.ZkSession.begin_stop`), after which it closes itself
  and leaves the node to session expiry;
- its session is lost: its election node is gone already, so it steps down and rejoins as
  a standby under the new session.

With MySQL configured the leader also runs a :class:`~zkq.coordinator.retention.Pruner` on a
thread of its own, which moves finished jobs to the archive; MySQL being away only delays
pruning, never dispatching.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from zkq.coordinator.archive import JobArchive
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.dispatcher import Dispatcher
from zkq.coordinator.mysql import ConnectionPool
from zkq.coordinator.retention import Pruner, prune_interval
from zkq.coordinator.scheduled import Promoter
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.ticker import ticker_for
from zkq.coordinator.zk import ConnectionLost, Election, ZkSession, connect
from zkq.coordinator.zk.outages import report_outages

log = logging.getLogger(__name__)


class Coordinator:
    def __init__(
        self, config: ClusterConfig, name: str | None = None, session: ZkSession | None = None
    ) -> None:
        """``session``: the ZooKeeper session to use, by default one to ``config.zk``; it is
        the coordinator's from then on (:meth:`run` starts and stops it)."""
        self.config = config
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.session = session or connect(config.zk, name="coordinator")
        self.store = JobStore(self.session, config.limits)
        self.stats = DispatchStats()
        # connects lazily: a coordinator starts (and dispatches) while MySQL is down
        self.archive = JobArchive(ConnectionPool(config.mysql, 2)) if config.mysql else None
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._election: Election | None = None
        self.session.on_state_change(lambda _state: self._wake.set())

    def stop(self) -> None:
        """Leave leadership and the election now; safe to call from a signal handler."""
        self._stop.set()
        self._wake.set()
        # nothing this process still asks of ZooKeeper may hold the exit past the grace
        self.session.begin_stop()
        election = self._election
        if election is not None:
            # cancel() interrupts a standby's wait; a leader leaves when its loop sees _stop
            threading.Thread(target=election.cancel, daemon=True).start()

    def run(self) -> None:
        # before the first attempt: one line every few seconds while disconnected
        report_outages(self.session, log)
        self.session.start()
        while not self._stop.is_set() and not self.session.wait_connected(1.0):
            pass
        if self._stop.is_set():
            self.session.stop()
            return
        self.session.ensure_paths(self.config.zk.layout.fixed_parents())
        while not self._stop.is_set():
            if not self.session.wait_connected(1.0):
                continue  # check for a stop at least once a second while disconnected
            self._election = self.session.election(self.config.zk.layout.election, self.name)
            try:
                self._election.run(self._lead)
            except ConnectionLost as exc:
                log.info("election interrupted (%s); rejoining", exc)
                self._stop.wait(0.2)
            except Exception:
                log.exception("leadership ended by an error; rejoining the election")
                self._stop.wait(1.0)
        self.session.stop()
        if self.archive is not None:
            self.archive.pool.close()
        log.info("coordinator %s stopped", self.name)

    def _lead(self) -> None:
        log.info("coordinator %s is the leader", self.name)
        self.leading.set()
        self.stats.leading = True
        generation = self.session.generation
        # our election node, an ephemeral of this session: gone once the session is
        fence = self._election.node if self._election is not None else None
        pruning = threading.Event()
        pruner = self._start_pruner(pruning)
        try:
            dispatcher = Dispatcher(
                self.session,
                self.store,
                should_stop=lambda: self._stop.is_set() or self.session.generation != generation,
                wake=self._wake,
                stats=self.stats,
                fence=fence,
            )
            dispatcher.tasks.append(Promoter(dispatcher))
            dispatcher.tasks.append(ticker_for(dispatcher, self.config.schedules, self.stats))
            dispatcher.run()
        finally:
            pruning.set()
            if pruner is not None:
                # stepping down must not wait on MySQL; a pruner still finishing a chunk
                # is harmless (it archived first, and its deletes are version-checked)
                pruner.join(timeout=2.0)
            self.leading.clear()
            self.stats.leading = False
            self.stats.queues = {}
            log.info("coordinator %s stepped down", self.name)

    def _start_pruner(self, stop: threading.Event) -> threading.Thread | None:
        if self.archive is None:
            return None
        pruner = Pruner(
            self.store,
            self.archive,
            self.config.retention_seconds,
            should_stop=lambda: stop.is_set() or self._stop.is_set(),
            stats=self.stats,
        )
        thread = threading.Thread(
            target=pruner.run,
            args=(stop, prune_interval(self.config.retention_seconds)),
            name="pruner",
            daemon=True,
        )
        thread.start()
        return thread

"""The leader's dispatcher: pending entries in memory, handed to workers with free slots.

Only the leader reads pending entries (no herd): it lists each pending shard once, keeps
the names in a heap per type, and re-lists a shard only when its child watch fires.  It
watches ``workers`` (who is alive), each worker's data (draining or not) and each inbox
(how many slots are taken), and ``paused`` (types an operator held back).

Everything runs on one thread.  Watch callbacks (on the session's thread) only add a path
to the dirty set and wake the loop.  Every watch is forgotten when the connection drops, so
after each reconnection the loop marks everything dirty and lists it all again: it
reconciles from ZooKeeper and trusts nothing it remembered or inherited from a previous
leader.  The workers and their inboxes are followed by :class:`~zkq.coordinator.roster.Roster`,
on the same thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from zkq.coordinator.assignment import Assigner
from zkq.coordinator.attempts import AttemptClock
from zkq.coordinator.buckets import BucketSweeper
from zkq.coordinator.errors import LeadershipLost, ZkqError
from zkq.coordinator.leader_tasks import LeaderTask
from zkq.coordinator.limits import LimitsWatch
from zkq.coordinator.overdue import OverdueReaper
from zkq.coordinator.pending import PendingIndex
from zkq.coordinator.roster import Roster
from zkq.coordinator.serving import UnservedNotice
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.sweep import Sweep
from zkq.coordinator.zk import (
    ConnectionLost,
    NoNode,
    WatchEvent,
    ZkSession,
)

log = logging.getLogger(__name__)

#: least seconds between two listings of a pending tick while the leader holds its type's work
RELIST_INTERVAL = 0.1


class Dispatcher:
    """Runs while this process leads; :meth:`run` returns when leadership must end."""

    def __init__(
        self,
        session: ZkSession,
        store: JobStore,
        should_stop: Callable[[], bool],
        wake: threading.Event,
        batch_size: int = 64,
        overdue_grace: float = 2.0,
        stats: DispatchStats | None = None,
        fence: str | None = None,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """``fence``: the leader's own election node; every write the leader makes
        (assignments, requeues, clean-ups) checks in the same multi that it still exists
        (see :meth:`JobStore.assign_many`).  ``clock``: the wall clock that pending
        buckets' ages are judged by (their names are times).  ``timer``: the leader's own
        clock that attempts are timed on, monotonic; never compared with a time another
        machine wrote (:mod:`zkq.coordinator.attempts`).  Tests pass their own of both,
        to move time on."""
        self.session = session
        self.store = store
        self.layout = store.layout
        self.should_stop = should_stop
        self.wake = wake
        self.batch_size = batch_size
        self.stats = stats or DispatchStats()
        self.fence = fence
        self.clock = clock
        self.timer = timer
        self.buckets = BucketSweeper(session, clock, fence=lambda: self.fence)
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self.pending = PendingIndex()
        self.paused: set[str] = set()
        self.attempts = AttemptClock(overdue_grace)
        self.overdue = OverdueReaper(store, self.attempts, self.stats, lambda: self.fence)
        self.sweep = Sweep(store, self.attempts, self.stats, lambda: self.fence)
        self.roster = Roster(
            session,
            store,
            self.attempts,
            self.stats,
            self.watch,
            self._mark,
            fence=lambda: self.fence,
            timer=timer,
        )
        self._connections_seen = -1
        self._published_at = 0.0
        self._listed: dict[str, list[str] | None] = {}
        self._rotation = 0
        self._tick_listed_at: dict[str, float] = {}
        self._deferred: dict[str, float] = {}  # tick path -> when to list it
        self.unserved = UnservedNotice()
        self.limits = LimitsWatch(session, self.layout, self.watch, self._mark)
        self.assigner = Assigner(
            session,
            store,
            self.pending,
            self.roster,
            self.attempts,
            self.stats,
            paused=lambda: self.paused,
            limits=lambda: self.limits.limits,
            mark=self._mark,
            fence=lambda: self.fence,
            timer=timer,
            batch_size=batch_size,
        )
        #: leader tasks run each round after assignment, in order (see :class:`LeaderTask`)
        self.tasks: list[LeaderTask] = [self.limits]

    def mark(self, *paths: str) -> None:
        """Have these paths listed, with a child watch, in the next round (for tasks; a
        task's own data watches use :meth:`watch`, which marks the path when it fires)."""
        self._mark(*paths)
        self.wake.set()

    # -- watches: called on the session's thread, so they only mark and wake --------------
    def watch(self, event: WatchEvent) -> None:
        if event.path:  # a NONE event (connection change) is the reconcile's business
            with self._dirty_lock:
                self._dirty.add(event.path)
        self.wake.set()

    def _mark(self, *paths: str) -> None:
        with self._dirty_lock:
            self._dirty.update(paths)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        generation = self.session.generation
        log.info("leading: reconciling from ZooKeeper")
        while not self.should_stop():
            if self.session.generation != generation:
                log.warning("session lost while leading: stepping down")
                return
            if not self.session.connected.is_set():
                # SUSPENDED: dispatch nothing until the connection is back
                self.session.connected.wait(0.5)
                continue
            self.wake.clear()
            try:
                assigned = self.step()
            except ConnectionLost as exc:
                log.info("ZooKeeper unavailable while dispatching (%s)", exc)
                # whatever was in flight may or may not have applied, and the dirty paths
                # taken for this round are lost: reconcile once the connection is back.  A
                # request that timed out on a connection still up (an overloaded ensemble)
                # must not turn into a loop of full re-listings: pause a little first
                self._connections_seen = -1
                self.wake.wait(0.2)
                continue
            except LeadershipLost as exc:
                log.warning("%s: stepping down", exc)
                return
            except Exception as exc:
                # a bug or a record nobody can read must not end leadership (the next leader
                # would meet the same thing): log it, reconcile from scratch, carry on
                if isinstance(exc, ZkqError):
                    log.warning("dispatch step failed: %s", exc)
                else:
                    log.exception("dispatch step failed")
                self._connections_seen = -1
                self.wake.wait(0.5)
                continue
            self._publish()
            if not assigned:
                self.wake.wait(self._next_timer())

    def step(self) -> int:
        """One round: reconcile after a (re)connection, list again what watches marked,
        assign, take back overdue attempts, sweep a batch of records when one is due.
        Returns how many jobs it assigned.  Raises :class:`ConnectionLost` (reconcile on
        the next round) and :class:`LeadershipLost`."""
        if self.session.connections != self._connections_seen:
            self._connections_seen = self.session.connections
            self._reconcile_all()
        self._process_dirty()
        assigned = self.assigner.assign()
        for task in self.tasks:
            assigned += task.step(self.clock(), self.timer())
        self.overdue.reap(self.timer())
        self.sweep.step(self.timer())
        return assigned

    def _publish(self, every: float = 1.0) -> None:
        """Refresh the snapshot that metrics read, at most once a second."""
        now = time.monotonic()
        if now - self._published_at < every:
            return
        self._published_at = now
        running = self.attempts.running_by_type()
        queues = self.pending.snapshot(running, self.paused)
        self.stats.queues = queues
        self.stats.workers = len(self.roster.workers)
        self.stats.free_slots = sum(view.free for view in self.roster.workers.values())
        self.stats.unreadable = self.pending.set_aside_count
        self.stats.capped = self.assigner.capped({t: q.depth for t, q in queues.items()})
        taking = [v.types for v in self.roster.workers.values() if not v.draining]
        self.unserved.check(
            {t: q.depth for t, q in queues.items()}, frozenset().union(*taking), self.paused
        )

    def _next_timer(self) -> float:
        wait = 1.0
        if self._deferred:
            wait = min(wait, min(self._deferred.values()) - time.monotonic())
        soonest = self.attempts.soonest()
        if soonest is not None:
            wait = min(wait, soonest - self.timer())
        if self.sweep.next_at is not None:
            wait = min(wait, self.sweep.next_at - self.timer())
        dues = [task.next_at(self.clock(), self.timer()) for task in self.tasks]
        wait = min([wait, *(due for due in dues if due is not None)])
        return max(0.01, wait)

    def _reconcile_all(self) -> None:
        self._deferred.clear()
        self._tick_listed_at.clear()
        self.pending.clear()
        self._mark(self.layout.pending, self.layout.workers, self.layout.paused)
        self._mark(self.layout.inboxes)
        for worker in self.roster.workers.values():
            self._mark(self.layout.inbox(worker.id), self.layout.worker(worker.id))
        for task in self.tasks:
            task.on_reconcile()

    def _process_dirty(self) -> None:
        now = time.monotonic()
        due = [p for p, at in self._deferred.items() if at <= now]
        for path in due:
            del self._deferred[path]
        self._mark(*due)
        while True:
            with self._dirty_lock:
                if not self._dirty:
                    return
                batch, self._dirty = self._dirty, set()
            batch = {p for p in batch if not self._defer(p, now)}
            # one pipelined round of listings for the whole batch (a dirty inbox per busy
            # worker, a shard per submitting second), rather than a round trip each
            self._listed = self._list_many(
                [p for p in batch if not p.startswith(self.layout.workers + "/")]
            )
            try:
                # parents first, so a new shard is known before its entries are listed
                for path in sorted(batch, key=lambda p: p.count("/")):
                    self._relist(path)
            finally:
                self._listed = {}

    def _defer(self, path: str, now: float) -> bool:
        """Put off re-listing a pending tick while we hold work of its type.

        Every assignment batch deletes entries from a tick, which fires our own watch on
        it; re-listing the whole tick each time (thousands of names during a burst) costs
        the ensemble more than the assignments.  A tick is listed at once when we hold
        nothing of its type (a new job must not wait), otherwise at most every
        :data:`RELIST_INTERVAL`: a job submitted into a busy tick waits that much longer."""
        if path in self._deferred:
            return True
        parts = path[len(self.layout.pending) + 1 :].split("/")
        if not path.startswith(self.layout.pending + "/") or len(parts) != 3:
            return False
        listed = self._tick_listed_at.get(path)
        if (
            listed is None
            or now - listed >= RELIST_INTERVAL
            or not self.pending.holds_work(parts[0])
        ):
            self._tick_listed_at[path] = now
            return False
        self._deferred[path] = listed + RELIST_INTERVAL
        return True

    def _list_many(self, paths: list[str]) -> dict[str, list[str] | None]:
        return self.session.get_children_many(paths, watch=self.watch)

    def _children(self, path: str) -> list[str] | None:
        """Children of ``path``, with a child watch: from this round's pipelined listing
        when it has the path, else read now."""
        if path in self._listed:
            return self._listed.pop(path)
        try:
            return self.session.get_children(path, watch=self.watch)
        except NoNode:
            return None

    def _relist(self, path: str) -> None:
        layout = self.layout
        if path == layout.pending:
            for job_type in self._children(path) or []:
                self._mark(layout.pending_type(job_type))
        elif path == layout.workers:
            self.roster.relist_workers(self._children(path))
        elif path == layout.inboxes:
            self.roster.reap_orphan_inboxes(self._children(path))
        elif path == layout.paused:
            self.paused = set(self._children(path) or [])
        elif path.startswith(layout.pending + "/"):
            self._relist_pending(path)
        elif path.startswith(layout.inboxes + "/"):
            self.roster.relist_inbox(path.rsplit("/", 1)[1], self._children(path))
        elif path.startswith(layout.workers + "/"):
            worker_id = path.rsplit("/", 1)[1]
            if worker_id in self.roster.workers:
                self.roster.read_worker(worker_id)
        else:
            for task in self.tasks:
                if task.owns(path):
                    task.relist(path, self._children(path))
                    break

    # -- pending ---------------------------------------------------------------------------
    def _relist_pending(self, path: str) -> None:
        parts = path[len(self.layout.pending) + 1 :].split("/")
        names = self._children(path)
        if len(parts) == 1:  # a type: its eras
            for era in names or []:
                self._mark(self.layout.pending_era(parts[0], era))
        elif len(parts) == 2:  # an era: its ticks
            if names is None:
                self.pending.forget_era(path)
                return
            seen = self.pending.era_ticks(path)
            for tick in names:
                tick_path = self.layout.pending_tick(parts[0], parts[1], tick)
                # a tick we deleted may have been made again by a late writer (a retry into
                # an old bucket): one we hold no listing for is listed, whatever we saw
                if tick not in seen or not self.pending.knows_tick(tick_path):
                    seen.add(tick)
                    self._mark(tick_path)
            seen.intersection_update(names)
            if not names:
                self._drop_if_old(path, parts[1] + "ZZ")
        elif len(parts) == 3 and self.pending.load_tick(parts[0], path, names):  # a tick
            era, tick = path.rsplit("/", 2)[-2:]
            self._drop_if_old(path, era + tick)  # empty

    def _drop_if_old(self, path: str, bucket_prefix: str) -> None:
        """Delete an empty pending tick or era whose time ended long ago, and forget it."""
        if not self.buckets.drop_if_old(path, bucket_prefix):
            return
        self._tick_listed_at.pop(path, None)
        if path.count("/") > self.layout.pending.count("/") + 2:  # a tick, not an era
            self.pending.forget_tick(path)
            # look at its era again: the era's watch then sees the tick if it comes back
            self._mark(path.rpartition("/")[0])

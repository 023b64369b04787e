"""The leader's dispatcher: pending entries in memory, handed to workers with free slots.

Only the leader reads pending entries (no herd): it lists each pending shard once, keeps
the names in a heap per type, and re-lists a shard only when its child watch fires.  It
watches ``workers`` (who is alive), each worker's data (draining or not) and each inbox
(how many slots are taken), and ``paused`` (types an operator held back).

Everything runs on one thread.  Watch callbacks (on kazoo's thread) only add a path to the
dirty set and wake the loop.  kazoo forgets every watch when the connection drops, so after
each reconnection the loop marks everything dirty and lists it all again: it reconciles
from ZooKeeper and trusts nothing it remembered or inherited from a previous leader.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kazoo.exceptions import NoNodeError, NotEmptyError
from kazoo.protocol.states import WatchedEvent

from zkq.coordinator.attempts import AttemptClock
from zkq.coordinator.errors import LeadershipLost, ZkqError
from zkq.coordinator.ids import id_time
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.paths import parse_pending_name
from zkq.coordinator.pending import PendingIndex
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import (
    TRANSIENT_ERRORS,
    TransactionFailed,
    ZkSession,
    commit,
    op_check,
    op_delete,
)

log = logging.getLogger(__name__)

#: how long an emptied pending shard is kept before the leader deletes it; it covers
#: submitters whose clocks run behind and tick nodes they are about to write into
EMPTY_SHARD_GRACE = 120.0
#: least seconds between two listings of a pending tick while the leader holds its type's work
RELIST_INTERVAL = 0.1


@dataclass
class WorkerView:
    """What the leader knows of one live worker."""

    id: str
    types: frozenset[str]
    slots: int
    prefetch: int = 0  # assignments it holds beyond its slots, queued locally
    draining: bool = False
    inbox: set[str] = field(default_factory=set)

    @property
    def free(self) -> int:
        return self.room()

    def room(self) -> int:
        """Assignments it can take, counting its prefetch."""
        return 0 if self.draining else max(0, self.slots + self.prefetch - len(self.inbox))

    def idle(self) -> int:
        """Assignments that would start at once."""
        return 0 if self.draining else max(0, self.slots - len(self.inbox))


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
    ) -> None:
        """``fence``: the leader's own election node; every assignment checks that it still
        exists (see :meth:`JobStore.assign_many`)."""
        self.session = session
        self.client = session.client
        self.store = store
        self.layout = store.layout
        self.should_stop = should_stop
        self.wake = wake
        self.batch_size = batch_size
        self.stats = stats or DispatchStats()
        self.fence = fence
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self.pending = PendingIndex()
        self.workers: dict[str, WorkerView] = {}
        self.paused: set[str] = set()
        self.attempts = AttemptClock(overdue_grace)
        self._connections_seen = -1
        self._published_at = 0.0
        self._listed: dict[str, list[str] | None] = {}
        self._rotation = 0
        self._tick_listed_at: dict[str, float] = {}
        self._deferred: dict[str, float] = {}  # tick path -> when to list it

    # -- watches: called on kazoo's thread, so they only mark and wake ---------------------
    def _watch(self, event: WatchedEvent) -> None:
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
                if self.session.connections != self._connections_seen:
                    self._connections_seen = self.session.connections
                    self._reconcile_all()
                self._process_dirty()
                assigned = self._assign()
                self._reap_overdue()
            except TRANSIENT_ERRORS as exc:
                log.info("ZooKeeper unavailable while dispatching (%s)", type(exc).__name__)
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

    def _publish(self, every: float = 1.0) -> None:
        """Refresh the snapshot that metrics read, at most once a second."""
        now = time.monotonic()
        if now - self._published_at < every:
            return
        self._published_at = now
        running = self.attempts.running_by_type()
        queues = self.pending.snapshot(running, self.paused)
        self.stats.queues = queues
        self.stats.workers = len(self.workers)
        self.stats.free_slots = sum(view.free for view in self.workers.values())

    def _next_timer(self) -> float:
        wait = 1.0
        if self._deferred:
            wait = min(wait, min(self._deferred.values()) - time.monotonic())
        soonest = self.attempts.soonest()
        if soonest is not None:
            wait = min(wait, soonest - time.time())
        return max(0.01, wait)

    def _reconcile_all(self) -> None:
        self._deferred.clear()
        self._tick_listed_at.clear()
        self.pending.clear()
        self._mark(self.layout.pending, self.layout.workers, self.layout.paused)
        self._mark(self.layout.inboxes)
        for worker in self.workers.values():
            self._mark(self.layout.inbox(worker.id), self.layout.worker(worker.id))

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
        requests = [(p, self.client.get_children_async(p, watch=self._watch)) for p in paths]
        listed: dict[str, list[str] | None] = {}
        for path, request in requests:
            try:
                listed[path] = list(request.get())
            except NoNodeError:
                listed[path] = None
        return listed

    def _children(self, path: str) -> list[str] | None:
        """Children of ``path``, with a child watch: from this round's pipelined listing
        when it has the path, else read now."""
        if path in self._listed:
            return self._listed.pop(path)
        try:
            return list(self.client.get_children(path, watch=self._watch))
        except NoNodeError:
            return None

    def _relist(self, path: str) -> None:
        layout = self.layout
        if path == layout.pending:
            for job_type in self._children(path) or []:
                self._mark(layout.pending_type(job_type))
        elif path == layout.workers:
            self._relist_workers()
        elif path == layout.inboxes:
            self._reap_orphan_inboxes()
        elif path == layout.paused:
            self.paused = set(self._children(path) or [])
        elif path.startswith(layout.pending + "/"):
            self._relist_pending(path)
        elif path.startswith(layout.inboxes + "/"):
            worker_id = path.rsplit("/", 1)[1]
            self._relist_inbox(worker_id)
        elif path.startswith(layout.workers + "/"):
            worker_id = path.rsplit("/", 1)[1]
            if worker_id in self.workers:
                self._read_worker(worker_id)

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
        """Delete an empty pending shard or era whose time ended long ago."""
        try:
            ended = id_time(bucket_prefix.ljust(26, "Z")[:26])
        except ValueError:
            return
        if time.time() - ended < EMPTY_SHARD_GRACE:
            return
        try:
            self.client.delete(path)
        except (NoNodeError, NotEmptyError):
            return
        self._tick_listed_at.pop(path, None)
        if path.count("/") > self.layout.pending.count("/") + 2:  # a tick, not an era
            self.pending.forget_tick(path)
            # look at its era again: the era's watch then sees the tick if it comes back
            self._mark(path.rpartition("/")[0])

    # -- workers and inboxes ---------------------------------------------------------------
    def _relist_workers(self) -> None:
        alive = set(self._children(self.layout.workers) or [])
        for gone in set(self.workers) - alive:
            self._worker_gone(gone)
        for new in alive - set(self.workers):
            if self._read_worker(new):
                self._mark(self.layout.inbox(new))
        self._mark(self.layout.inboxes)

    def _read_worker(self, worker_id: str) -> bool:
        try:
            raw, _ = self.client.get(self.layout.worker(worker_id), watch=self._watch)
        except NoNodeError:
            self._worker_gone(worker_id)
            return False
        try:
            info: dict[str, Any] = json.loads(raw)
            types = frozenset(info["types"])
            slots = int(info["slots"])
            prefetch = max(0, int(info.get("prefetch", 0)))
        except (ValueError, KeyError, TypeError):
            log.warning("worker %s registered unreadable data; ignoring it", worker_id)
            return False
        view = self.workers.get(worker_id)
        if view is None:
            view = self.workers[worker_id] = WorkerView(worker_id, types, slots, prefetch)
            log.info(
                "worker joined: %d slots for %s",
                slots,
                ",".join(sorted(types)),
                extra={"worker_id": worker_id},
            )
        draining = bool(info.get("draining"))
        if draining and not view.draining:
            self._hand_on_unstarted(view)
        view.draining = draining
        return True

    def _hand_on_unstarted(self, view: WorkerView) -> None:
        """A worker began to drain: what waits unstarted in its inbox goes to others now,
        at no attempt's cost, instead of waiting for its running jobs to end."""
        for jid in sorted(view.inbox):
            job = self.store.requeue(
                jid, "requeued", f"worker {view.id} is draining", only_unstarted=True
            )
            if job is not None:
                self.attempts.forget(jid)
                log.info(
                    "unstarted job handed on from a draining worker",
                    extra={"job_id": jid, "worker_id": view.id, "type": job.type},
                )

    def _relist_inbox(self, worker_id: str) -> None:
        view = self.workers.get(worker_id)
        names = self._children(self.layout.inbox(worker_id))
        if view is None:
            return
        current = set(names or [])
        unknown = [jid for jid in current if jid not in self.attempts]
        for jid in view.inbox - current:  # what left this inbox since we last looked
            self.attempts.forget(jid, worker_id)
        view.inbox = current
        if unknown:
            for job, _ in self.store.get_many(unknown).values():
                self.attempts.track(job, worker_id)

    def _worker_gone(self, worker_id: str) -> None:
        """Its session is gone (or it drained): every job in its inbox goes back."""
        self.workers.pop(worker_id, None)
        inbox = self.layout.inbox(worker_id)
        for jid in self._children_plain(inbox):
            job = self.store.requeue(jid, "lost", f"worker {worker_id} is gone")
            self.attempts.forget(jid)
            if job is not None:
                self.stats.requeued += 1
                log.info(
                    "job requeued from a lost worker, now %s",
                    job.state,
                    extra={"job_id": jid, "worker_id": worker_id, "type": job.type},
                )
            with contextlib.suppress(NoNodeError):
                self.client.delete(self.layout.inbox_entry(worker_id, jid))
        with contextlib.suppress(NoNodeError, NotEmptyError):
            self.client.delete(inbox)
        log.info("worker left", extra={"worker_id": worker_id})

    def _children_plain(self, path: str) -> list[str]:
        try:
            return list(self.client.get_children(path))
        except NoNodeError:
            return []

    def _reap_orphan_inboxes(self) -> None:
        """Inboxes whose worker is not registered: a worker that died while no leader
        was watching.

        The order of the two reads matters.  Registration creates the inbox and the worker
        node in one multi, so an inbox seen in the first listing whose worker is missing
        from the *later* listing of workers really is orphaned.  Listing workers first
        would mistake a worker registering between the two reads for a dead one."""
        inboxes = self._children(self.layout.inboxes) or []
        alive = set(self._children_plain(self.layout.workers))
        for worker_id in inboxes:
            if worker_id not in alive:
                self._worker_gone(worker_id)

    # -- assignment ------------------------------------------------------------------------
    def _assign(self) -> int:
        """Hand pending jobs to workers with room, a batch per multi.

        Idle slots are filled before prefetch room (a job should run now on an idle worker
        rather than queue behind another's), one job per worker per round, starting each
        call from the next worker in turn."""
        total = 0
        generation = self.session.generation
        while self.pending.has_work(self.paused) and self.session.generation == generation:
            order = list(self.workers.values())
            if order:
                self._rotation = (self._rotation + 1) % len(order)
                order = order[self._rotation :] + order[: self._rotation]
            picks: list[tuple[str, str, str]] = []  # (job id, worker, shard)
            reserved: dict[str, int] = {}
            for room in (WorkerView.idle, WorkerView.room):
                progress = True
                while progress and len(picks) < self.batch_size:
                    progress = False
                    for view in order:
                        if room(view) - reserved.get(view.id, 0) <= 0:
                            continue
                        best = self.pending.pop_best(view.types, self.paused)
                        if best is None:
                            continue
                        _, name, shard = best
                        picks.append((parse_pending_name(name)[1], view.id, shard))
                        reserved[view.id] = reserved.get(view.id, 0) + 1
                        progress = True
                        if len(picks) >= self.batch_size:
                            break
            if not picks:
                return total
            total += self._commit_picks(picks)
        return total

    def _commit_picks(self, picks: list[tuple[str, str, str]]) -> int:
        records = self.store.get_many([jid for jid, _, _ in picks])
        choices: list[tuple[Job, int, str]] = []
        for jid, worker_id, shard in picks:
            found = records.get(jid)
            if found is None or found[0].state != JobState.PENDING:
                self._drop_stray_entry(jid, shard, found)
                continue
            choices.append((found[0], found[1], worker_id))
        assigned, refused = self.store.assign_many(choices, fence=self.fence)
        for job in assigned:
            view = self.workers.get(job.worker or "")
            if view is not None:
                view.inbox.add(job.id)
            self.attempts.track(job, job.worker or "")
        for job, error in refused:
            log.info(
                "assignment refused (%s); re-reading",
                type(error).__name__,
                extra={"job_id": job.id, "type": job.type},
            )
            self._mark(self.layout.pending_shard(job.type, job.id))
            if job.worker is None:
                self._mark(self.layout.workers)
        self.stats.assigned += len(assigned)
        self.stats.transactions += 1 + len(refused)
        return len(assigned)

    def _drop_stray_entry(self, job_id: str, shard: str, found: tuple[Job, int] | None) -> None:
        """A pending entry whose job is not pending.  Transactions keep the two in step, so
        this is an entry the record has moved past while our listing was stale, or a record
        removed by hand.  Delete the entry only while the record is still as we read it: a
        job sent back to pending meanwhile (a retry, a revive) has its entry again."""
        for name in self._children_plain(shard):
            if not name.endswith("-" + job_id):
                continue
            ops = [op_delete(f"{shard}/{name}")]
            if found is not None:
                ops.insert(0, op_check(self.layout.job(job_id), found[1]))
            try:
                commit(self.client, ops)
            except TransactionFailed:
                self._mark(shard)  # it changed: look again
                return
            log.warning(
                "deleted a pending entry whose job is %s",
                found[0].state if found else "gone",
                extra={"job_id": job_id},
            )

    # -- overdue attempts --------------------------------------------------------------------
    def _reap_overdue(self) -> None:
        now = time.time()
        due = self.attempts.due(now)
        if not due:
            return
        found = self.store.get_many(due)
        for jid in due:
            if jid not in found:
                self.attempts.forget(jid)  # pruned or removed: nothing to look at
        for jid, (job, version) in found.items():
            if job.terminal or job.state == JobState.PENDING:
                self.attempts.forget(jid)
                continue
            look = self.attempts.next_look(job, now)
            if look is not None:
                self.attempts.reschedule(jid, look)  # started later than assigned, or not yet
                continue
            result = self.store.requeue(
                jid,
                "timeout",
                f"attempt exceeded its timeout of {job.timeout:g}s",
                expected_version=version,  # not one that started after we looked
            )
            self.attempts.forget(jid)
            if result is not None:
                self.stats.requeued += 1
                self.stats.timeouts += 1
                log.warning(
                    "attempt overdue: taken back, now %s",
                    result.state,
                    extra={"job_id": jid, "worker_id": job.worker or "", "type": job.type},
                )

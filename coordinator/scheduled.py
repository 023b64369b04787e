"""The leader's promoter: scheduled jobs whose ``run_at`` has come go to pending.

Scheduled entries are indexed by due time (``scheduled/<era>/<tick>/<born>/<due>-<id>``,
:mod:`zkq.coordinator.paths`).  The promoter holds in memory only the entries of the *open*
buckets, those whose time starts before ``now + LOOKAHEAD`` on the leader's clock (the one
clock that decides a job is due), plus any backlog that fell due while nobody led.  Future
buckets are neither listed nor watched, so a round costs what falls due, never what waits.

- Buckets come to be known from listings (an open era lists its ticks, an open tick its
  leaves) and wait in a heap ordered by time until they open.  Opening a bucket is one
  listing with a child watch, through the dispatcher's pipelined round; after that it is
  listed again only when its watch fires (a late writer, a short delay, a retry).
- The root ``scheduled`` is not watched: it may hold an era for every 17.5 minutes of a
  year.  The era the clock reaches is opened by the clock (an ``exists`` watch while it
  does not exist), and the root is listed only at reconcile and every
  :data:`ROOT_RELIST` seconds, for the past eras a previous leader left behind or a
  submitter whose clock lags by more than the bucket grace wrote into.
- Recovery is bounded: past buckets open oldest first, at most :data:`OPEN_PER_ROUND`
  listings a round, and none while the heap already holds two rounds of promotions.
- Promotion reads the due records (one pipelined read per batch) and promotes them in
  fenced multis of :data:`PROMOTE_BATCH`, at most :data:`PROMOTE_PER_ROUND` a round; the
  promoted entries go straight into the dispatcher's pending index, so assignment takes
  them in the same loop without waiting for the pending tick's watch.
- An entry whose record is not scheduled at that time is stray: deleted only while the
  record is as read.  An unreadable record (a newer schema) keeps its entry, set aside.
- Empty buckets whose time ended more than the grace ago are deleted (BucketSweeper).
"""

from __future__ import annotations

import heapq
import logging
from typing import TYPE_CHECKING

from zkq.coordinator.buckets import BucketSweeper
from zkq.coordinator.errors import LeadershipLost
from zkq.coordinator.ids import id_time
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.paths import ERA_CHARS, due_key, parse_scheduled_name, pending_name
from zkq.coordinator.zk import Check, Delete, NoNode, Op, TransactionFailed

if TYPE_CHECKING:
    from zkq.coordinator.dispatcher import Dispatcher

log = logging.getLogger(__name__)

#: a bucket opens (is listed and watched) this long before its time starts
LOOKAHEAD = 2.0
#: jobs promoted in one multi, and at most in one round
PROMOTE_BATCH = 64
PROMOTE_PER_ROUND = 512
#: bucket listings opened in one round (recovery after an outage drains oldest first)
OPEN_PER_ROUND = 64
#: seconds between listings of the root, for eras nobody announced
ROOT_RELIST = 300.0
#: distinct pending ticks remembered as existing before the memory starts afresh
KNOWN_TICKS = 10_000


def bucket_start(key: str) -> float:
    """When the due bucket named by a time prefix (era, or era + tick) starts."""
    return id_time(key.ljust(26, "0")[:26])


class Promoter:
    """A :class:`~zkq.coordinator.leader_tasks.LeaderTask` of the dispatcher's."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.session = dispatcher.session
        self.store = dispatcher.store
        self.layout = dispatcher.layout
        self.stats = dispatcher.stats
        self.root = self.layout.scheduled
        self.buckets = BucketSweeper(
            self.session, dispatcher.clock, fence=lambda: self.dispatcher.fence
        )
        #: how many listings of the root it made (tests check it is not once per round)
        self.root_listings = 0
        self.on_reconcile()

    # -- what it remembers ------------------------------------------------------------------
    def on_reconcile(self) -> None:
        self._heap: list[tuple[str, str, str]] = []  # (due key, job id, leaf path)
        self._leaves: dict[str, set[str]] = {}  # open leaf -> entry names held
        self._ticks: dict[str, set[str]] = {}  # open tick -> leaves seen
        self._eras: dict[str, set[str]] = {}  # open era -> ticks seen
        self._waiting: list[tuple[str, str]] = []  # (time prefix, path): known, not open
        self._queued: set[str] = set()
        self._aside: set[str] = set()  # entry names whose record cannot be read here
        self._root_listed_at: float | None = None
        self._known_ticks: set[str] = set()  # pending ticks known to exist
        self._absent: set[str] = set()  # eras listed as missing, with an exists watch

    def owns(self, path: str) -> bool:
        return path.startswith(self.root + "/")

    @property
    def held(self) -> int:
        """Entries of open buckets in memory (due or about to be)."""
        return sum(len(names) for names in self._leaves.values())

    def _queue(self, key: str, path: str) -> None:
        if path not in self._queued:
            self._queued.add(path)
            heapq.heappush(self._waiting, (key, path))

    # -- listings -----------------------------------------------------------------------------
    def relist(self, path: str, names: list[str] | None) -> None:
        parts = path[len(self.root) + 1 :].split("/")
        if len(parts) == 1:
            self._relist_era(path, parts[0], names)
        elif len(parts) == 2:
            self._relist_tick(path, parts[0] + parts[1], names)
        elif len(parts) == 3:
            self._relist_leaf(path, names)

    def _relist_era(self, path: str, era: str, names: list[str] | None) -> None:
        if names is None:
            self._eras.pop(path, None)
            self._absent.add(path)
            # a child watch is not left on a node that does not exist: watch for it to be
            # made (the era the clock has reached, or a late writer into one we deleted)
            if self.session.exists(path, watch=self.dispatcher.watch) is not None:
                self.dispatcher.mark(path)
            return
        self._absent.discard(path)
        seen = self._eras.setdefault(path, set())
        for tick in names:
            tick_path = f"{path}/{tick}"
            if tick not in seen or tick_path not in self._ticks:
                seen.add(tick)
                self._queue(era + tick, tick_path)
        seen.intersection_update(names)
        if not names and self.buckets.drop_if_old(path, era + "ZZ"):
            self._eras.pop(path, None)

    def _relist_tick(self, path: str, key: str, names: list[str] | None) -> None:
        if names is None:
            self._ticks.pop(path, None)
            return
        seen = self._ticks.setdefault(path, set())
        for leaf in names:
            leaf_path = f"{path}/{leaf}"
            if leaf not in seen or leaf_path not in self._leaves:
                seen.add(leaf)
                self._queue(key, leaf_path)
        seen.intersection_update(names)
        if not names and self.buckets.drop_if_old(path, key):
            self._ticks.pop(path, None)
            self.dispatcher.mark(path.rpartition("/")[0])  # its era may be empty now

    def _relist_leaf(self, path: str, names: list[str] | None) -> None:
        held = self._leaves.setdefault(path, set())
        if names is None:
            self._leaves.pop(path, None)
            return
        listed = set(names)
        for name in listed - held - self._aside:
            due, job_id = parse_scheduled_name(name)
            heapq.heappush(self._heap, (due, job_id, path))
        held.clear()
        held.update(listed)
        tick_key = "".join(path[len(self.root) + 1 :].split("/")[:2])
        if not listed and self.buckets.drop_if_old(path, tick_key):
            self._leaves.pop(path, None)
            self.dispatcher.mark(path.rpartition("/")[0])  # its tick may be empty now

    def _list_root(self, wall_now: float, mono_now: float) -> None:
        self._root_listed_at = mono_now
        self.root_listings += 1
        try:
            eras = self.session.get_children(self.root)
        except NoNode:
            eras = []
        for era in eras:
            if self.layout.scheduled_era(era) not in self._eras:
                self._queue(era, self.layout.scheduled_era(era))

    # -- the round ----------------------------------------------------------------------------
    def step(self, wall_now: float, mono_now: float) -> int:
        if self._root_listed_at is None or mono_now - self._root_listed_at >= ROOT_RELIST:
            self._list_root(wall_now, mono_now)
        horizon = due_key(wall_now + LOOKAHEAD)
        era = self.layout.scheduled_era(horizon[:ERA_CHARS])
        if era not in self._eras and era not in self._absent:
            self._queue(horizon[:ERA_CHARS], era)
        self._open(horizon)
        promoted = self._promote(wall_now)
        self.stats.due_backlog = self._due_count(due_key(wall_now))
        return promoted

    def _open(self, horizon: str) -> None:
        """Mark the buckets whose time has opened for listing, oldest first, bounded."""
        opened = 0
        while self._waiting and opened < OPEN_PER_ROUND and len(self._heap) < 2 * PROMOTE_PER_ROUND:
            key, path = self._waiting[0]
            if key > horizon[: len(key)]:
                return  # the oldest known bucket is still in the future: so are the rest
            heapq.heappop(self._waiting)
            self._queued.discard(path)
            self.dispatcher.mark(path)
            opened += 1

    def _due_count(self, now_key: str) -> int:
        """Entries held that are due (the backlog), counted over the heap's due prefix."""
        return sum(1 for due, _, _ in self._heap if due <= now_key)

    def _pop_due(self, now_key: str, limit: int) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        while self._heap and len(out) < limit and self._heap[0][0] <= now_key:
            due, job_id, leaf = heapq.heappop(self._heap)
            name = f"{due}-{job_id}"
            if name in self._leaves.get(leaf, ()) and name not in self._aside:
                out.append((due, job_id, leaf))
        return out

    def _promote(self, wall_now: float) -> int:
        now_key = due_key(wall_now)
        total = 0
        later: list[tuple[str, str, str]] = []
        while total < PROMOTE_PER_ROUND:
            due = self._pop_due(now_key, min(PROMOTE_BATCH, PROMOTE_PER_ROUND - total))
            if not due:
                break
            total += self._promote_batch(due, wall_now, later)
        for entry in later:  # due within this millisecond, not yet: the next round's
            heapq.heappush(self._heap, entry)
        return total

    def _promote_batch(
        self, due: list[tuple[str, str, str]], wall_now: float, later: list[tuple[str, str, str]]
    ) -> int:
        records, unreadable = self.store.read_many([job_id for _, job_id, _ in due])
        choices: list[tuple[Job, int]] = []
        for key, job_id, leaf in due:
            name = f"{key}-{job_id}"
            if job_id in unreadable:
                self._aside.add(name)  # never delete what we cannot read: a newer leader may
                continue
            found = records.get(job_id)
            entry = f"{leaf}/{name}"
            if (
                found is None
                or found[0].state != JobState.SCHEDULED
                or found[0].run_at is None
                or self.layout.scheduled_entry(found[0].run_at, job_id) != entry
            ):
                self._drop_stray(entry, found)
                self._leaves.get(leaf, set()).discard(name)  # a relisting shows it if kept
                continue
            if found[0].run_at > wall_now:  # due this millisecond, not yet this microsecond
                later.append((key, job_id, leaf))
                continue
            choices.append(found)
        if not choices:
            return 0
        self._ensure_pending_ticks([job for job, _ in choices])
        promoted, refused = self.store.promote_many(choices, fence=self.dispatcher.fence)
        lags = [wall_now - (job.run_at or wall_now) for job in promoted]
        self.stats.promoted += len(promoted)
        self.stats.promotion_lag_sum += sum(lags)
        self.stats.promotion_lag_max = max([self.stats.promotion_lag_max, *lags])
        for job in promoted:
            leaf = self.layout.scheduled_leaf(job.run_at or 0.0, job.id)
            self._leaves.get(leaf, set()).discard(f"{due_key(job.run_at or 0.0)}-{job.id}")
            self._hand_to_pending(job)
        for job, error in refused:
            log.info(
                "promotion refused (%s); re-reading",
                type(error).__name__,
                extra={"job_id": job.id},
            )
            leaf = self.layout.scheduled_leaf(job.run_at or 0.0, job.id)
            # forget the name, so that the relisting offers it again if it is still there
            self._leaves.get(leaf, set()).discard(f"{due_key(job.run_at or 0.0)}-{job.id}")
            self.dispatcher.mark(leaf)
        return len(promoted)

    def _drop_stray(self, entry: str, found: tuple[Job, int] | None) -> None:
        """Delete an entry whose record is not waiting on it, only while the record is as
        read (a job revived meanwhile has its entry again) and we still lead."""
        fence = self.dispatcher.fence
        head: list[Op] = [Check(fence)] if fence else []
        ops: list[Op] = [Delete(entry)]
        if found is not None:
            ops.insert(0, Check(self.layout.job(found[0].id), found[1]))
        try:
            self.session.multi([*head, *ops])
        except TransactionFailed as failed:
            if failed.index < len(head):
                raise LeadershipLost(
                    "the election node is gone: this coordinator no longer leads"
                ) from None
            self.dispatcher.mark(entry.rpartition("/")[0])  # it changed: look again
            return
        log.warning(
            "deleted a scheduled entry whose job is %s",
            found[0].state if found else "gone",
            extra={"job_id": parse_scheduled_name(entry.rpartition("/")[2])[1]},
        )

    def _ensure_pending_ticks(self, jobs: list[Job]) -> None:
        """The pending tick of a job's creation may have been swept long ago: make the
        distinct ones of this batch that we have not seen exist, rather than paying a
        failed multi for each."""
        for tick in {self.layout.pending_shard(job.type, job.id) for job in jobs}:
            if tick in self._known_ticks:
                continue
            self.session.ensure_path(tick)
            if len(self._known_ticks) >= KNOWN_TICKS:
                self._known_ticks.clear()
            self._known_ticks.add(tick)

    def _hand_to_pending(self, job: Job) -> None:
        """Put the promoted entry in the dispatcher's pending index now.  A tick the index
        never listed is listed as well (with its watch), so that the index knows all of it."""
        tick = self.layout.pending_shard(job.type, job.id)
        pending = self.dispatcher.pending
        if not pending.knows_tick(tick):
            self.dispatcher.mark(tick)
        pending.add_entries(job.type, tick, [pending_name(job.priority, job.id)])

    def next_at(self, wall_now: float, mono_now: float) -> float | None:
        soonest: list[float] = []
        if self._heap:
            soonest.append(bucket_start(self._heap[0][0]) - wall_now)
        if self._waiting and len(self._heap) < 2 * PROMOTE_PER_ROUND:
            soonest.append(bucket_start(self._waiting[0][0]) - LOOKAHEAD - wall_now)
        if self._root_listed_at is not None:
            soonest.append(self._root_listed_at + ROOT_RELIST - mono_now)
        return min(soonest, default=None)

"""The leader's ticker: turns periodic schedules into jobs, one per tick, exactly once.

A :class:`~zkq.coordinator.leader_tasks.LeaderTask` on the dispatcher's thread.  It keeps
every schedule it has read with the UTC instant of its next tick in a heap; each round it
decides the due ones (at most :data:`TICKS_PER_ROUND`) and writes each tick as one multi::

    Check(fence) + Create(job record) + Create(pending entry) + SetData(state, version)

Exactly once per tick rests on two guards, each enough alone:

1. the state node's version: of two tickers that read the same state, one multi applies
   and the other rolls back whole, then decides again from a fresh read;
2. the job's id, derived from the tick (:func:`~zkq.coordinator.ids.derived_job_id`): a
   tick made already fails ``NodeExists`` on its record, whatever the state said; the
   ticker then commits only the state's advance (still fenced) and counts ``duplicate``.

The fence is a third, ordinary layer.  ``last_tick_at`` only moves forward: a decision
starts from the instant read and writes a later one.

Misfires: ticks that came and went unwritten (no leader, a pause) are decided by the
schedule's ``misfire``: ``run_once`` makes one job for the latest of them, ``skip`` none;
the rest are counted in ``skipped``.  A tick within ``grace`` of its time is not missed.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zkq.coordinator import lifecycle
from zkq.coordinator.errors import InvalidInput, JobNotFound
from zkq.coordinator.ids import derived_job_id
from zkq.coordinator.job import Job, JobSpec
from zkq.coordinator.lifecycle import Batch
from zkq.coordinator.schedules import SYSTEM_OWNER, ScheduleRecord, ScheduleState
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import (
    BadVersion,
    Check,
    ConnectionLost,
    Create,
    NodeExists,
    NoNode,
    SetData,
    TransactionFailed,
    Watch,
)

if TYPE_CHECKING:
    from zkq.coordinator.dispatcher import Dispatcher

log = logging.getLogger(__name__)

TICKS_PER_ROUND = 64
READS_PER_ROUND = 256
OUTCOMES = ("enqueued", "skipped", "duplicate", "overlap", "raced")


@dataclass
class _Known:
    record: ScheduleRecord
    state: ScheduleState
    version: int | None  # of the state node; None: it does not exist yet
    due: float | None  # the instant of its next tick; None: paused


class Ticker:
    """Fires the due ticks of every schedule; see the module doc."""

    def __init__(
        self,
        store: JobStore,
        fence: Callable[[], str | None],
        mark: Callable[..., None],
        watch: Watch,
        declared: Sequence[ScheduleRecord] = (),
        clock: Callable[[], float] = time.time,
        stats: DispatchStats | None = None,
    ) -> None:
        self.store = store
        self.session = store.session
        self.layout = store.layout
        self.fence = fence
        self.mark = mark
        self.watch = watch
        self.declared = list(declared)
        self.clock = clock
        self.stats = stats
        self.known: dict[tuple[str, str], _Known] = {}
        self.heap: list[tuple[float, str, str]] = []
        self.dirty: set[tuple[str, str]] = set()
        #: ticks decided, by outcome (``zkq_schedule_ticks_total``)
        self.outcomes: Counter[str] = Counter()
        self._upsert = True

    # -- the LeaderTask contract ---------------------------------------------------------
    def owns(self, path: str) -> bool:
        return path == self.layout.schedules or path.startswith(self.layout.schedules + "/")

    def relist(self, path: str, names: list[str] | None) -> None:
        parts = path[len(self.layout.schedules) :].strip("/").split("/") if path else []
        parts = [p for p in parts if p]
        if not parts:  # the root: its children are owners
            for owner in names or []:
                self.mark(self.layout.schedules_of(owner))
            return
        owner = parts[0]
        if len(parts) == 1:
            present = set(names or [])
            for key in [k for k in self.known if k[0] == owner and k[1] not in present]:
                del self.known[key]  # removed: its heap entry is dropped when popped
            self.dirty.update((owner, name) for name in present)
            return
        self.dirty.add((owner, parts[1]))  # the definition or its state changed

    def on_reconcile(self) -> None:
        self.known.clear()
        self.heap.clear()
        self._upsert = True
        self.mark(self.layout.schedules)

    def next_at(self, wall_now: float, mono_now: float) -> float | None:
        if self.dirty:
            return 0.0  # more to read: come back at once
        while self.heap and not self._current(self.heap[0]):
            heapq.heappop(self.heap)
        return max(0.0, self.heap[0][0] - wall_now) if self.heap else None

    def step(self, wall_now: float, mono_now: float) -> int:
        if self._upsert:
            self._upsert = False
            self.upsert_declared()
        # bounded: after a reconnect every schedule is reread, over several rounds, so that
        # assignment is not held up by thousands of reads
        for owner, name in sorted(self.dirty)[:READS_PER_ROUND]:
            self.dirty.discard((owner, name))
            self.read(owner, name)
        if self.stats is not None:
            self.stats.schedules = len(self.known)
        done = 0
        while self.heap and done < TICKS_PER_ROUND and self.heap[0][0] <= wall_now:
            entry = heapq.heappop(self.heap)
            if not self._current(entry):
                continue
            try:
                done += self.fire(entry[1], entry[2], wall_now)
            except (InvalidInput, ValueError, OverflowError) as exc:
                # one schedule whose times cannot be computed must not end the leadership
                # (it would again under the next leader): set it aside until it changes
                log.warning("schedule %s/%s is set aside: %s", entry[1], entry[2], exc)
                self.known[(entry[1], entry[2])].due = None
        return done

    # -- reading ----------------------------------------------------------------------------
    def _current(self, entry: tuple[float, str, str]) -> bool:
        known = self.known.get((entry[1], entry[2]))
        return known is not None and known.due == entry[0]

    def read(self, owner: str, name: str) -> None:
        """(Re)read a schedule and its state, with data watches, and queue its next tick."""
        path = self.layout.schedule(owner, name)
        try:
            raw, _ = self.session.get(path, watch=self.watch)
            record = ScheduleRecord.from_bytes(raw)
        except NoNode:
            self.known.pop((owner, name), None)
            return
        except (ValueError, TypeError, InvalidInput) as exc:
            log.warning("schedule %s/%s is unreadable, left alone: %s", owner, name, exc)
            self.known.pop((owner, name), None)
            return
        try:
            raw, stat = self.session.get(path + "/state", watch=self.watch)
            state, version = ScheduleState.from_bytes(raw), stat.version
        except NoNode:
            state, version = ScheduleState(), None
            self.mark(path)  # its child watch sees the state made by another ticker
        except (ValueError, TypeError) as exc:
            log.warning("schedule %s/%s has an unreadable state, left alone: %s", owner, name, exc)
            return
        self.remember(owner, name, record, state, version)

    def remember(
        self,
        owner: str,
        name: str,
        record: ScheduleRecord,
        state: ScheduleState,
        version: int | None,
    ) -> None:
        base = state.last_tick_at if state.last_tick_at is not None else record.created_at
        due = None if record.paused else record.next_after(base)
        self.known[(owner, name)] = _Known(record, state, version, due)
        if due is not None:
            heapq.heappush(self.heap, (due, owner, name))

    # -- deciding and writing a tick -------------------------------------------------------
    def fire(self, owner: str, name: str, now: float) -> int:
        """Decide and write the due tick of one schedule; returns 1 when a job was made."""
        known = self.known[(owner, name)]
        record, state = known.record, known.state
        assert known.due is not None
        first = known.due
        instant, missed = first, 0
        make = True
        if now >= first + record.grace:  # missed: decided by policy, never one by one
            latest = record.latest_at_or_before(now)
            instant = first if latest is None or latest < first else latest
            missed = record.missed_between(first, instant)
            make = record.misfire == "run_once"
        outcome = "enqueued" if make else "skipped"
        if make and record.overlap == "skip" and self._running(state.last_job):
            make, outcome = False, "overlap"
        key = record.key(instant)
        job = self.tick_job(record, instant, key, now) if make else None
        advanced = ScheduleState(
            last_tick=key,
            last_tick_at=instant,
            last_job=job.id if job is not None else state.last_job,
            skipped=state.skipped + missed + (0 if make else 1),
        )
        written = self.commit(owner, name, job, advanced, known.version)
        if written is None:
            return 0
        if written != "duplicate":  # (a duplicate is counted where it is found)
            self.outcomes[outcome] += 1
        self.outcomes["skipped"] += missed
        version = 0 if known.version is None else self.state_version(known.version) + 1
        self.remember(owner, name, record, advanced, version)
        return 1 if job is not None and written == "enqueued" else 0

    def _running(self, job_id: str | None) -> bool:
        if job_id is None:
            return False
        try:
            return not self.store.read(job_id)[0].terminal
        except JobNotFound:
            return False

    def tick_id(self, record: ScheduleRecord, instant: float, key: str) -> str:
        """The tick's job id: derived, so every ticker names one tick's job alike."""
        return derived_job_id(instant, f"{record.owner}\0{record.name}\0{key}")

    def state_version(self, read: int) -> int:
        """The version the state is written at: the one read (guard 1)."""
        return read

    def tick_job(self, record: ScheduleRecord, instant: float, key: str, now: float) -> Job:
        template = record.template
        spec = JobSpec(
            type=template["type"],
            payload=template.get("payload"),
            priority=template.get("priority", 0),
            max_attempts=template.get("max_attempts", 1),
            timeout=template.get("timeout", 300.0),
            job_id=self.tick_id(record, instant, key),
            id_recorded=True,  # an old-dated id: a catch-up tick may be hours old
            tenant=None if record.owner == SYSTEM_OWNER else record.owner,
            retry=template.get("retry"),
        )
        return spec.to_job(now, self.store.limits).replace(
            run_at=instant,
            scheduled_for="schedule",
            schedule={"owner": record.owner, "name": record.name, "tick": key},
        )

    def commit(
        self, owner: str, name: str, job: Job | None, state: ScheduleState, version: int | None
    ) -> str | None:
        """Write one tick; returns ``enqueued`` or ``duplicate`` as written, or None when
        the multi was refused (the schedule is read again and decided anew)."""
        state_path = self.layout.schedule(owner, name) + "/state"
        fence = self.fence()
        head = (Check(fence),) if fence else ()
        at = None if version is None else self.state_version(version)
        step = lifecycle.tick(self.layout, job, state_path, state.to_bytes(), at)
        try:
            self.store.commit_fenced(Batch((step,), head))
            return "enqueued"
        except TransactionFailed as failed:
            if job is None or not (
                isinstance(failed.error, NodeExists) and failed.index == len(head)
            ):
                self._refused(owner, name, failed.error)
                return None
        except ConnectionLost:
            self.dirty.add((owner, name))  # applied or not: the state read says which
            raise
        # guard 2: this tick's job exists, so another ticker made it (our own lost reply
        # cannot: after one we reread the state, which says the tick was written)
        self.outcomes["duplicate"] += 1
        log.info("schedule %s/%s: tick %s was made already", owner, name, state.last_tick)
        only = lifecycle.tick(self.layout, None, state_path, state.to_bytes(), at)
        try:
            self.store.commit_fenced(Batch((only,), head))
        except TransactionFailed:
            self.dirty.add((owner, name))  # the other ticker moved the state on too
            return None
        except ConnectionLost:
            self.dirty.add((owner, name))
            raise
        return "duplicate"

    def _refused(self, owner: str, name: str, error: BaseException) -> None:
        if isinstance(error, BadVersion | NodeExists):
            self.outcomes["raced"] += 1  # another writer moved the state: decide again
        self.dirty.add((owner, name))

    # -- schedules declared in the coordinator's config -----------------------------------
    def upsert_declared(self) -> None:
        """Write each config schedule under ``_``: create it, or rewrite its definition when
        it differs (the state, another node, stays).  Never delete: a config schedule this
        leader does not declare is only logged, so coordinators with different configs
        during a rolling change cannot remove each other's."""
        fence = self.fence()
        head = [Check(fence)] if fence else []
        mine = {r.name for r in self.declared}
        for record in self.declared:
            path = self.layout.schedule(SYSTEM_OWNER, record.name)
            try:
                raw, stat = self.session.get(path)
            except NoNode:
                self.session.ensure_path(self.layout.schedules_of(SYSTEM_OWNER))
                with contextlib.suppress(TransactionFailed):  # made meanwhile: next time
                    # dated now: from the epoch, its first tick would be a catch-up
                    made = record.replace(created_at=record.created_at or self.clock())
                    self.session.multi([*head, Create(path, made.to_bytes())])
                continue
            try:
                stored = ScheduleRecord.from_bytes(raw)
            except (ValueError, TypeError, InvalidInput):
                stored = None
            if stored is not None and stored.definition_hash == record.definition_hash:
                continue
            # an operator's pause outlives a definition change from the config
            keep = (
                record.replace(created_at=stored.created_at, paused=stored.paused)
                if stored
                else record
            )
            try:
                self.session.multi([*head, SetData(path, keep.to_bytes(), stat.version)])
                log.warning("config schedule %s rewritten from this leader's config", record.name)
            except TransactionFailed:
                pass
        try:
            names = self.session.get_children(self.layout.schedules_of(SYSTEM_OWNER))
        except NoNode:
            return
        for name in sorted(set(names) - mine):
            try:
                raw, _ = self.session.get(self.layout.schedule(SYSTEM_OWNER, name))
                source = ScheduleRecord.from_bytes(raw).source
            except (NoNode, ValueError, TypeError, InvalidInput):
                continue
            if source == "config":
                log.warning(
                    "config schedule %s is not in this coordinator's config: it stays; "
                    "remove it with `zkq schedules remove %s --owner _`",
                    name,
                    name,
                )


def ticker_for(
    dispatcher: Dispatcher, declared: Sequence[ScheduleRecord], stats: DispatchStats
) -> Ticker:
    """The ticker of a new leadership, wired to its dispatcher (fence, marks, watches)
    and counting into the service's stats."""
    ticker = Ticker(
        dispatcher.store,
        fence=lambda: dispatcher.fence,
        mark=dispatcher.mark,
        watch=dispatcher.watch,
        declared=declared,
        clock=dispatcher.clock,
        stats=stats,
    )
    ticker.outcomes = stats.schedule_ticks
    return ticker

"""The leader's assignment: pending jobs picked for workers with room, a batch per multi.

Part of the dispatcher (:mod:`zkq.coordinator.dispatcher`), on its one thread.  Which
types a worker may still take is :mod:`zkq.coordinator.admission`'s answer (reserved
slots, type limits); the rest is the order: idle slots before prefetch room, round robin
over workers, the best pending entry of the types allowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from zkq.coordinator.admission import Admission
from zkq.coordinator.attempts import AttemptClock
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.limits import TypeLimit
from zkq.coordinator.paths import parse_pending_name
from zkq.coordinator.pending import PendingIndex
from zkq.coordinator.roster import Roster, WorkerView
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.strays import drop_stray_entry
from zkq.coordinator.zk import ZkSession

log = logging.getLogger(__name__)

#: (job id, worker id, pending tick path, entry name, type)
Pick = tuple[str, str, str, str, str]


class Assigner:
    def __init__(
        self,
        session: ZkSession,
        store: JobStore,
        pending: PendingIndex,
        roster: Roster,
        attempts: AttemptClock,
        stats: DispatchStats,
        paused: Callable[[], set[str]],
        limits: Callable[[], Mapping[str, TypeLimit]],
        mark: Callable[..., None],
        fence: Callable[[], str | None],
        timer: Callable[[], float] = time.monotonic,
        batch_size: int = 64,
    ) -> None:
        """``paused()``, ``limits()``, ``fence()``: the dispatcher's current ones;
        ``mark(*paths)``: have these listed again next round."""
        self.session = session
        self.store = store
        self.layout = store.layout
        self.pending = pending
        self.roster = roster
        self.attempts = attempts
        self.stats = stats
        self.paused = paused
        self.limits = limits
        self._mark = mark
        self.fence = fence
        self.timer = timer
        self.batch_size = batch_size
        self.admission = Admission()
        self._rotation = 0

    def _begin(self) -> None:
        workers = self.roster.workers.values()
        self.admission.begin(workers, self.attempts.held_by_worker(), self.limits())

    def capped(self, depths: Mapping[str, int]) -> dict[str, int]:
        """Pending jobs per type held back only by a limit or the reserve rule."""
        self._begin()
        return self.admission.capped(depths, self.roster.workers.values())

    def assign(self) -> int:
        """Hand pending jobs to workers with room, a batch per multi.

        Idle slots are filled before prefetch room (a job should run now on an idle worker
        rather than queue behind another's), one job per worker per round, starting each
        call from the next worker in turn."""
        total = 0
        generation = self.session.generation
        paused = self.paused()
        self._begin()
        while self.pending.has_work(paused) and self.session.generation == generation:
            order = list(self.roster.workers.values())
            if order:
                self._rotation = (self._rotation + 1) % len(order)
                order = order[self._rotation :] + order[: self._rotation]
            picks: list[Pick] = []
            reserved: dict[str, int] = {}
            for room in (WorkerView.idle, WorkerView.room):
                progress = True
                while progress and len(picks) < self.batch_size:
                    progress = False
                    for view in order:
                        if room(view) - reserved.get(view.id, 0) <= 0:
                            continue
                        allowed = self.admission.allowed(view)
                        best = self.pending.pop_best(allowed, paused) if allowed else None
                        if best is None:
                            continue
                        job_type, name, shard = best
                        jid = parse_pending_name(name)[1]
                        picks.append((jid, view.id, shard, name, job_type))
                        self.admission.took(view, job_type)
                        reserved[view.id] = reserved.get(view.id, 0) + 1
                        progress = True
                        if len(picks) >= self.batch_size:
                            break
            if not picks:
                return total
            total += self._commit_picks(picks)
        return total

    def _commit_picks(self, picks: list[Pick]) -> int:
        records, unreadable = self.store.read_many([pick[0] for pick in picks])
        choices: list[tuple[Job, int, str]] = []
        for jid, worker_id, shard, name, job_type in picks:
            if jid in unreadable or records.get(jid) is None:
                self.admission.gave_back(worker_id, job_type)
            if jid in unreadable:
                # a record this zkq cannot parse (a newer schema, mid rolling upgrade): never
                # delete what we do not understand.  Its entry stays for a leader that can
                # read it; we stop offering it until the next reconcile
                self.pending.set_aside(name, shard)
                continue
            found = records.get(jid)
            if found is None or found[0].state != JobState.PENDING:
                if found is not None:
                    self.admission.gave_back(worker_id, job_type)
                fence = self.fence()
                if not drop_stray_entry(self.session, self.layout, fence, jid, shard, found):
                    self._mark(shard)  # it changed: look again
                continue
            choices.append((self._with_lane(found[0], worker_id), found[1], worker_id))
        assigned, refused = self.store.assign_many(choices, fence=self.fence())
        for job in assigned:
            view = self.roster.workers.get(job.worker or "")
            if view is not None:
                view.inbox.add(job.id)
            self.attempts.track(job, job.worker or "", self.timer())
        for job, error in refused:
            self.admission.gave_back(job.worker or "", job.type)
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

    def _with_lane(self, job: Job, worker_id: str) -> Job:
        """The job with the lane it is assigned under, for operators to see why it waited
        (none for an older worker, so its records stay as that worker can read them)."""
        view = self.roster.workers.get(worker_id)
        lane = None if view is None else self.admission.lane(view, job.type)
        return job if lane is None or lane == job.lane else job.replace(lane=lane)

"""The live workers as the leader sees them: what each serves, how much room it has, and
what happens to the jobs of one that leaves.

Part of the dispatcher (:mod:`zkq.coordinator.dispatcher`) and run on its one thread: the
dispatcher lists ``workers``, ``inboxes`` and each inbox (pipelined, with its watch) and
hands the listings here; each registration is read here, with the same watch, so an
operator's drain is seen at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from zkq.coordinator.attempts import AttemptClock
from zkq.coordinator.job import AttemptOutcome
from zkq.coordinator.registration import BadRegistration, WorkerInfo
from zkq.coordinator.stats import DispatchStats
from zkq.coordinator.store import JobStore
from zkq.coordinator.strays import fenced_delete
from zkq.coordinator.zk import NoNode, Watch, ZkSession

log = logging.getLogger(__name__)


@dataclass
class WorkerView:
    """What the leader knows of one live worker."""

    id: str
    types: frozenset[str]
    slots: int
    prefetch: int = 0  # assignments it holds beyond its slots, queued locally
    draining: bool = False
    inbox: set[str] = field(default_factory=set)
    #: what it registered for fairness (:mod:`zkq.coordinator.admission`); an older
    #: worker's registration has none of it: no reserve, nothing declared
    reserve: int = 0
    lanes: Mapping[str, str] = field(default_factory=dict)
    type_limits: Mapping[str, int] = field(default_factory=dict)
    lost_slots: int = 0

    @property
    def free(self) -> int:
        return self.room()

    def room(self) -> int:
        """Assignments it can take, counting its prefetch."""
        usable = self.slots - self.lost_slots
        return 0 if self.draining else max(0, usable + self.prefetch - len(self.inbox))

    def idle(self) -> int:
        """Assignments that would start at once."""
        return 0 if self.draining else max(0, self.slots - self.lost_slots - len(self.inbox))


class Roster:
    def __init__(
        self,
        session: ZkSession,
        store: JobStore,
        attempts: AttemptClock,
        stats: DispatchStats,
        watch: Watch,
        mark: Callable[..., None],
        fence: Callable[[], str | None] = lambda: None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """``watch``: the dispatcher's watch; ``mark(*paths)``: list these paths again;
        ``fence()``: the leader's election node, checked by every write made here;
        ``timer()``: the leader's clock, that attempts are timed by."""
        self.session = session
        self.store = store
        self.layout = store.layout
        self.attempts = attempts
        self.stats = stats
        self._watch = watch
        self._mark = mark
        self.fence = fence
        self.timer = timer
        self.workers: dict[str, WorkerView] = {}

    def relist_workers(self, listed: list[str] | None) -> None:
        """``listed``: the children of ``workers``, as listed now."""
        alive = set(listed or [])
        for gone in set(self.workers) - alive:
            self.worker_gone(gone)
        for new in alive - set(self.workers):
            if self.read_worker(new):
                self._mark(self.layout.inbox(new))
        self._mark(self.layout.inboxes)

    def read_worker(self, worker_id: str) -> bool:
        try:
            raw, _ = self.session.get(self.layout.worker(worker_id), watch=self._watch)
        except NoNode:
            self.worker_gone(worker_id)
            return False
        try:
            info = WorkerInfo.from_bytes(worker_id, raw)
        except BadRegistration as exc:
            log.warning("%s; ignoring the worker", exc)
            return False
        view = self.workers.get(worker_id)
        if view is None:
            view = WorkerView(worker_id, info.types, info.slots, info.prefetch)
            self.workers[worker_id] = view
            log.info(
                "worker joined: %d slots for %s",
                info.slots,
                ",".join(sorted(info.types)),
                extra={"worker_id": worker_id},
            )
        if info.draining and not view.draining:
            self._hand_on_unstarted(view)
        view.draining = info.draining
        view.reserve, view.lost_slots = info.reserve, info.lost_slots
        view.lanes, view.type_limits = info.lanes, info.type_limits
        return True

    def _hand_on_unstarted(self, view: WorkerView) -> None:
        """A worker began to drain: what waits unstarted in its inbox goes to others now,
        at no attempt's cost, instead of waiting for its running jobs to end."""
        for jid in sorted(view.inbox):
            job = self.store.requeue(
                jid,
                AttemptOutcome.REQUEUED,
                f"worker {view.id} is draining",
                only_unstarted=True,
                holder=view.id,
                fence=self.fence(),
            )
            if job is not None:
                self.attempts.forget(jid, view.id)
                log.info(
                    "unstarted job handed on from a draining worker",
                    extra={"job_id": jid, "worker_id": view.id, "type": job.type},
                )

    def relist_inbox(self, worker_id: str, listed: list[str] | None) -> None:
        """``listed``: the children of the worker's inbox, as listed now."""
        view = self.workers.get(worker_id)
        if view is None:
            return
        current = set(listed or [])
        unknown = [jid for jid in current if jid not in self.attempts]
        for jid in view.inbox - current:  # what left this inbox since we last looked
            self.attempts.forget(jid, worker_id)
        view.inbox = current
        if unknown:
            for job, _ in self.store.get_many(unknown).values():
                self.attempts.track(job, worker_id, self.timer())

    def worker_gone(self, worker_id: str) -> None:
        """Its session is gone (or it drained): every job in its inbox goes back."""
        self.workers.pop(worker_id, None)
        inbox = self.layout.inbox(worker_id)
        for jid in self._children(inbox):
            # only while the job is still this worker's: a leader that lost its session (and
            # so its election node, which fences this write) may be acting on an old listing
            job = self.store.requeue(
                jid,
                AttemptOutcome.LOST,
                f"worker {worker_id} is gone",
                holder=worker_id,
                fence=self.fence(),
            )
            self.attempts.forget(jid, worker_id)
            if job is not None:
                self.stats.requeued += 1
                log.info(
                    "job requeued from a lost worker, now %s",
                    job.state,
                    extra={"job_id": jid, "worker_id": worker_id, "type": job.type},
                )
            fenced_delete(self.session, self.layout.inbox_entry(worker_id, jid), self.fence())
        fenced_delete(self.session, inbox, self.fence())
        log.info("worker left", extra={"worker_id": worker_id})

    def reap_orphan_inboxes(self, inboxes: list[str] | None) -> None:
        """Inboxes whose worker is not registered: a worker that died while no leader
        was watching.  ``inboxes``: the children of ``inboxes``, as listed now.

        The order of the two reads matters.  Registration creates the inbox and the worker
        node in one multi, so an inbox seen in the first listing whose worker is missing
        from the *later* listing of workers really is orphaned.  Listing workers first
        would mistake a worker registering between the two reads for a dead one."""
        alive = set(self._children(self.layout.workers))
        for worker_id in inboxes or []:
            if worker_id not in alive:
                self.worker_gone(worker_id)

    def _children(self, path: str) -> list[str]:
        try:
            return self.session.get_children(path)
        except NoNode:
            return []


__all__ = ["Roster", "WorkerView"]

"""A worker's execution pipeline: assignments queued, claimed, run and recorded.

::

    inbox listing ──offer()──▶ queued ──┐
                                        ├─ committer: one multi claims as many queued jobs
    slot threads ◀──── ready ◀──────────┘  as there are free slots, and records the end of
         │                                  every attempt that finished meanwhile
         └── run the handler ──▶ events ───▶ (next multi)

The committer thread is the worker's only writer of job records.  Everything that became
ready while the previous multi was in flight goes into the next one (group commit), so a
busy worker writes far fewer transactions than it runs jobs: claims and completions share
multis.  Each step in a group keeps its own version check; a step whose op fails is set
aside (the job was cancelled or taken back) and the rest go again.

Slot threads only run handlers (in a thread, or in a process pool), so a slow handler
never delays anyone's commit.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from zkq.coordinator.errors import Fenced, InvalidInput, PayloadTooLarge
from zkq.coordinator.fenced import FencedWriter
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.lifecycle import Step
from zkq.coordinator.store import JobStore
from zkq.worker import retrying
from zkq.worker.control import SESSION, AttemptControl
from zkq.worker.cut_off import CutOff
from zkq.worker.leases import ClaimChanged, LeaseKeeper, SessionChanged
from zkq.worker.metrics import WorkerMetrics
from zkq.worker.pools import Outcome, Pool, StopPolicy, failure
from zkq.worker.registry import JobContext

log = logging.getLogger(__name__)

#: most steps in one multi (also bounded in bytes by the store)
COMMIT_GROUP = 64


class Nudge:
    """Wakes the committer to claim newly offered assignments."""


NUDGE = Nudge()


@dataclass
class Assignment:
    """A job in our inbox, read but not yet claimed."""

    job: Job
    version: int
    worker_id: str
    generation: int  # the session generation it was assigned under


@dataclass
class Started:
    job: Job
    version: int  # after the claim: what the end's version check holds
    worker_id: str
    generation: int
    about: dict[str, str] = field(default_factory=dict)
    control: AttemptControl | None = None  # the handler's ctx.heartbeat()/cancelled
    began: float = field(default_factory=time.monotonic)
    #: why the attempt was stopped (the committer's): recorded already, its slot still busy
    revoked: str | None = None
    #: stopped while cut off, and let go since (given back, or left to the leader)
    settled: bool = False


@dataclass
class Finished:
    started: Started
    outcome: Outcome
    took: float


@dataclass
class Heartbeat:
    """A handler renewed its attempt's lease: ``seconds`` from now (the committer writes it
    to the attempt's claim)."""

    started: Started
    seconds: float


Event = Finished | Heartbeat | ClaimChanged | SessionChanged | Nudge | None


class Pipeline:
    def __init__(
        self,
        store: JobStore,
        pool: Pool,
        slots: int,
        metrics: WorkerMetrics,
        generation: Callable[[], int],
        release: Callable[[str, bool], None],
        stop_grace: float = StopPolicy().kill_grace,
    ) -> None:
        """``stop_grace``: how long the pool may take to stop a handler by force (its
        ``kill_grace``), after which an attempt stopped while cut off is given back
        whether its handler returned or not (:mod:`zkq.worker.cut_off`)."""
        self.store = store
        self.writer = FencedWriter(store)
        self.pool = pool
        self.slots = slots
        self.metrics = metrics
        self._generation = generation
        # the job left the pipeline; True: look at the inbox again (the same job may have
        # been assigned to us anew while this attempt ran)
        self._release = release
        self._queued: deque[Assignment] = deque()
        self._queued_lock = threading.Lock()
        self._events: queue.Queue[Event] = queue.Queue()
        #: the leases of the running attempts (the committer's)
        self.leases: LeaseKeeper[Started] = LeaseKeeper(
            store.session, store.layout, self._events.put_nowait
        )
        self._ready: queue.Queue[Started | None] = queue.Queue()
        #: attempts stopped while cut off from ZooKeeper, to give back once connected again
        self._cut_off: CutOff[Started] = CutOff(stop_grace + 1.0)
        #: handlers claimed and not yet returned (only the committer writes it)
        self.busy = 0
        #: claimed and not yet recorded as ended: what a drain waits for
        self.outstanding = 0
        self.draining = False
        self._threads = [
            threading.Thread(target=self._slot, name=f"slot-{n}", daemon=True) for n in range(slots)
        ]
        self._committer = threading.Thread(target=self._commit_loop, name="committer", daemon=True)

    def start(self) -> None:
        # kazoo drops every watch with the connection: the keeper must hear of each change
        self.store.session.on_state_change(
            lambda state: self._events.put_nowait(SessionChanged(state))
        )
        for thread in self._threads:
            thread.start()
        self._committer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """After a drain (nothing outstanding, every slot back): stop the threads, waiting
        at most ``timeout`` for each (they are daemons: a straggler ends with the process)."""
        self._events.put(None)
        self._committer.join(timeout)
        self.leases.close()
        for _ in self._threads:
            self._ready.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def idle_but(self, lost: int) -> bool:
        """Every attempt recorded and every handler back but ``lost`` ones: a drain may end.
        (A revoked handler still being stopped holds its slot until it returns or is lost.)"""
        return self.outstanding == 0 and self.busy <= lost

    def drain(self) -> None:
        """Claim nothing more; what is queued is let go at the next commit."""
        with self._queued_lock:
            self.draining = True
        self._events.put_nowait(NUDGE)

    def offer(self, assignments: list[Assignment]) -> None:
        with self._queued_lock:
            self._queued.extend(assignments)
        self._events.put_nowait(NUDGE)

    # -- slot threads: run handlers -------------------------------------------------------
    def _slot(self) -> None:
        while True:
            started = self._ready.get()
            if started is None:
                return
            job = started.job
            control = started.control or AttemptControl(job.id, job.timeout)
            ctx = JobContext(
                job.id,
                job.type,
                job.attempts,
                job.max_attempts,
                job.parent,
                type_defaults=self.pool.registry.defaults(),
                control=control,
            )
            began = time.monotonic()
            try:
                outcome = self.pool.run(job.type, job.payload, ctx)
            except BaseException as exc:
                # a pool catches what handlers raise; this is what escapes it anyway (a bug,
                # a pool torn down under us).  The slot must survive it and the attempt must
                # end, or the job would sit claimed by a live worker until its timeout
                log.exception("the pool failed to run the handler", extra=started.about)
                outcome = failure(exc, traceback.format_exc())
            self._events.put(Finished(started, outcome, time.monotonic() - began))

    def _heartbeat_to(self, started: Started) -> Callable[[float], None]:
        def renew(seconds: float) -> None:
            self._events.put(Heartbeat(started, seconds))

        return renew

    # -- the committer: the only writer -----------------------------------------------------
    def _commit_loop(self) -> None:
        stopping = False
        while not stopping:
            batch: list[Event] = []
            # a timeout: a deferred renewal or the suspension limit is due
            wakes = (self.leases.next_wake(), self._cut_off.next_wake())
            with contextlib.suppress(queue.Empty):
                batch.append(
                    self._events.get(timeout=min((w for w in wakes if w is not None), default=None))
                )
            while len(batch) < COMMIT_GROUP:
                try:
                    batch.append(self._events.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is None for item in batch)
            self._lease_events(batch)
            finished = [item for item in batch if isinstance(item, Finished)]
            self.busy -= len(finished)  # their slots are free from now on
            for f in finished:
                self.leases.release(f.started.job.id, f.started)
                self._cut_off.returned(f.started.job.id, f.started)
            # a revoked attempt was recorded when it was stopped: its return frees the slot
            finished = [f for f in finished if f.started.revoked is None]
            claims = [] if stopping else self._claimable()
            given_back = self._cut_off.due(self.store.session.connected.is_set())
            try:
                self._commit(finished, claims, given_back)
            except Exception:
                # not a refusal (those are outcomes) but a bug: let go of everything; the
                # leader requeues what ran, and what did not start is offered again at the
                # next inbox event (not at once: a bug that persists would spin)
                log.exception("could not record %d step(s)", len(finished) + len(claims))
                for f in finished:
                    self.outstanding -= 1
                    self._release(f.started.job.id, True)
                for claim in claims:
                    self.outstanding -= 1
                    self._release(claim.job.id, False)
                for s in given_back:
                    if not s.settled:
                        self._cut_off.put_back(s.job.id, s)
            # renewals and revocations after the group: never part of its multi
            try:
                self._revoke(self.leases.step())
            except Exception:
                log.exception("could not renew or check the leases")

    def _lease_events(self, batch: list[Event]) -> None:
        generation = self._generation()
        for item in batch:
            if isinstance(item, Heartbeat):
                if item.started.generation == generation:  # else: of a session gone
                    self.leases.renew(item.started, item.started.job.id, item.seconds)
            elif isinstance(item, ClaimChanged):
                self.leases.claim_changed(item)
            elif isinstance(item, SessionChanged):
                self.leases.session_changed(item)

    def _revoke(self, over: list[tuple[Started, str]]) -> None:
        """Stop attempts that are over (cancelled, taken back, session gone) and record
        them at once, with no multi: the record has moved on, any write would be fenced.
        Their slots stay busy until the pool hands them back."""
        for started, reason in over:
            started.revoked = reason
            if started.control is not None:
                started.control.cancel(reason)
            try:
                self.pool.revoke(started.job.id, reason)
            except Exception:
                log.exception("the pool could not stop the handler", extra=started.about)
            self.metrics.ended(started.job.type, "revoked", time.monotonic() - started.began)
            log.warning("handler stopped (%s)", reason, extra=started.about)
            if reason == SESSION and started.generation == self.store.session.generation:
                # stopped on our own clock while cut off, and the session may yet live on
                # (a ZooKeeper election restarts every session's timer): then its claim
                # stays ours and nobody would take the job back before its timeout
                self._cut_off.add(started.job.id, started)
                continue
            self.outstanding -= 1
            self._release(started.job.id, True)

    def _claimable(self) -> list[Assignment]:
        """Queued assignments to claim now: as many as there are free slots."""
        out: list[Assignment] = []
        with self._queued_lock:
            if self.draining:
                dropped = list(self._queued)
                self._queued.clear()
            else:
                dropped = []
                generation = self._generation()
                while self._queued and self.busy + len(out) < self.slots:
                    item = self._queued.popleft()
                    if item.generation == generation:
                        out.append(item)
                    else:
                        dropped.append(item)  # assigned to a session we no longer have
                # outstanding from now, under the lock that drain() is ordered against: a
                # drain that sees nothing outstanding cannot race a claim in flight
                self.outstanding += len(out)
        for item in dropped:
            # unstarted: the leader requeues it at no cost, and may give it to our new
            # session's inbox, where the listing skipped it while it was held here
            self._release(item.job.id, True)
        return out

    def _commit(
        self, finished: list[Finished], claims: list[Assignment], given_back: list[Started]
    ) -> None:
        generation = self._generation()
        steps: list[tuple[Job, int, Step]] = []
        owners: list[Finished | Assignment | Started] = []
        for s in given_back:
            if s.generation == self.store.session.generation:
                reason = (
                    f"worker {s.worker_id} was cut off from ZooKeeper for longer than its "
                    "session timeout: it stopped the handler and gave the job back"
                )
                try:
                    step = self.writer.give_back_step(s.job, s.version, s.worker_id, reason)
                except Exception:
                    log.exception("cannot give the job back", extra=s.about)
                else:
                    steps.append((s.job, s.version, step))
                    owners.append(s)
                    continue
            # the session did end (the leader takes the job back from the lost claim), or
            # the give-back cannot be written (the claim times out on the leader's clock)
            self._settle(s)
        for f in finished:
            if f.started.generation != generation:
                self._ended(f, "abandoned")
                log.warning(
                    "job abandoned: the session it started under is gone", extra=f.started.about
                )
                continue
            steps.append((f.started.job, f.started.version, self._end_step(f)))
            owners.append(f)
        for claim in claims:
            if claim.job.state != JobState.ASSIGNED or claim.job.worker != claim.worker_id:
                self.outstanding -= 1
                self._release(claim.job.id, True)  # moved on before we read it: maybe back to us
                continue
            step = self.writer.start_step(claim.job, claim.version, claim.worker_id)
            steps.append((claim.job, claim.version, step))
            owners.append(claim)
        if not steps:
            return
        results = self.writer.commit_many(steps)
        for owner, (_, _, step), result in zip(owners, steps, results, strict=True):
            if isinstance(owner, Finished):
                self._recorded(owner, step, result)
            elif isinstance(owner, Started):
                # given back, or moved on meanwhile (fenced): either way no longer ours
                log.info(
                    "job given back: %s",
                    "refused, moved on" if isinstance(result, Fenced) else step.job.state,
                    extra=owner.about,
                )
                self._settle(owner)
            else:
                self._claimed(owner, result)

    def _settle(self, s: Started) -> None:
        s.settled = True
        self.outstanding -= 1
        self._release(s.job.id, True)

    def _claimed(self, claim: Assignment, result: tuple[Job, int] | Fenced) -> None:
        if isinstance(result, Fenced):
            # moved on since we read it (taken back, cancelled), maybe back into our inbox:
            # the listing reads it again and offers it only if it is ours to start
            self.outstanding -= 1
            self._release(claim.job.id, True)
            return
        job, version = result  # the version the end's check holds
        about = {"job_id": job.id, "worker_id": claim.worker_id, "type": job.type}
        self.busy += 1
        self.metrics.started(job.type, (job.started_at or time.time()) - job.created_at)
        log.info("job started, attempt %d/%d", job.attempts, job.max_attempts, extra=about)
        started = Started(job, version, claim.worker_id, claim.generation, about)
        started.control = AttemptControl(job.id, job.timeout, self._heartbeat_to(started))
        self.leases.hold(started, job, version, claim.worker_id)  # watch the claim from now on
        self._ready.put(started)

    def _recorded(self, f: Finished, step: Step, result: tuple[Job, int] | Fenced) -> None:
        about = f.started.about
        if isinstance(result, Fenced):
            self._ended(f, "fenced")
            log.warning("completion refused (fenced): %s", result, extra=about)
        elif step.job.state == JobState.SUCCEEDED:
            self._ended(f, "succeeded")
            log.info("job succeeded", extra=about)
        else:
            self._ended(f, "failed")
            message = (step.job.error or {}).get("message")
            log.info("job failed, now %s: %s", step.job.state, message, extra=about)

    def _ended(self, f: Finished, outcome: str) -> None:
        self.metrics.ended(f.started.job.type, outcome, f.took)
        self.outstanding -= 1
        self._release(f.started.job.id, True)

    def _end_step(self, f: Finished) -> Step:
        """The transition that records how an attempt ended.  Whatever is wrong with one
        outcome (a result that is not JSON, children too large) fails that attempt alone,
        never the group it is committed with."""
        s = f.started
        error = f.outcome.error
        if f.outcome.ok:
            try:
                return self.writer.complete_step(
                    s.job, s.version, s.worker_id, f.outcome.result, f.outcome.children
                )
            except PayloadTooLarge as exc:
                error = {"type": "ResultTooLarge", "message": str(exc)}
            except InvalidInput as exc:  # a result or child spec the cluster cannot take
                error = {"type": type(exc).__name__, "message": str(exc)}
            except Exception as exc:
                log.exception("cannot record the result", extra=s.about)
                error = {"type": type(exc).__name__, "message": f"cannot record the result: {exc}"}
        error, delay = retrying.settle(s.job, f.outcome, error or {})
        return self.writer.fail_step(s.job, s.version, s.worker_id, error, delay)

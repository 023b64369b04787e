"""A worker's side of the leases of its running attempts: renewals written to the claims,
and the word that an attempt is over (its claim deleted by a cancel or the leader's
take-back, or the worker's session gone).

Only the pipeline's committer calls a :class:`LeaseKeeper` (it is the worker's only writer);
watches and connection changes arrive as events on the committer's queue (``notify``).

- **Renewals** are versioned ``setData`` on the claim, at the version this worker created or
  last wrote (the leader never writes claim data, so the worker's chain of versions is
  exact), in a multi with a check of the record at the version the attempt started it at:
  a renewal of an attempt that was taken back can never land on the claim of the next
  attempt, whoever holds it (whose claim starts at version 0 again).  A refusal means the
  attempt is over.
  Writes are coalesced: at most one per attempt per ``lease / 4``; a deferred write carries
  the latest value and is written no later than ``last write + lease / 4``, before the lease
  the previous write granted runs out (so the leader's "never early" argument holds).  They
  are plain sets, outside the group-commit multi, so a refused one never fails a group.
- **Revocation** is seen by an ``exists`` watch on each running attempt's claim.  kazoo
  drops every watch on a lost connection (and the ensemble does not replay what it
  missed), so after each reconnection every running claim is read again in one pipelined
  round and re-watched.  A partitioned worker only learns its session expired once it
  reconnects, so a worker suspended for longer than its session timeout stops its attempts
  itself (``session``): the leader will have taken them back by then.  This is the worker's
  own clock deciding only about its own copy; the leader's take-back does not depend on it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from zkq.coordinator.errors import ZkqError
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.lease import Lease, parse_lease
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import (
    Check,
    ConnectionLost,
    ConnectionState,
    EventType,
    NotPermitted,
    Op,
    SetData,
    Stat,
    TransactionFailed,
    WatchEvent,
    ZkSession,
)
from zkq.worker.control import CANCELLED, LEASE, SESSION

log = logging.getLogger(__name__)

#: a renewal is written at most once per this fraction of the lease
WRITE_EVERY = 0.25

A = TypeVar("A")  # the pipeline's record of a started attempt


@dataclass(frozen=True)
class ClaimChanged:
    """A claim watch fired (on the session's thread)."""

    job_id: str
    attempt: int
    type: EventType


@dataclass(frozen=True)
class SessionChanged:
    """The worker's connection changed state."""

    state: str


@dataclass
class _Held(Generic[A]):
    owner: A
    job_id: str
    attempt: int
    lease: Lease
    version: int  # of the claim, as this worker created or last wrote it
    record_version: int  # of the record while the attempt runs (what its end checks)
    written: float  # monotonic time of the last write (or the claim)
    wanted: float | None = None  # seconds asked by a renewal not yet written
    silent: bool = False  # renewals refused by the ACL (a claim of an older zkq): dropped


class LeaseKeeper(Generic[A]):
    def __init__(
        self,
        session: ZkSession,
        layout: Layout,
        notify: Callable[[ClaimChanged | SessionChanged], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.layout = layout
        self._notify = notify
        self._clock = clock
        self._held: dict[str, _Held[A]] = {}  # job id -> its running attempt
        self._gone: set[str] = set()  # claims found deleted, reason not yet read
        self._recheck = False  # reconnected: read every claim again
        self._suspended_since: float | None = None
        self._session_over = False
        # watches are set by a thread of their own: an ``exists`` per claim would otherwise
        # cost the committer a round trip per job claimed, between two group commits
        self._to_arm: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._armer: threading.Thread | None = None

    def close(self) -> None:
        """Stop the watch-setting thread (the pipeline stops)."""
        if self._armer is not None:
            self._to_arm.put(None)
            self._armer.join(5)

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until every watch asked for is set (for tests)."""
        end = time.monotonic() + timeout
        while self._to_arm.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.005)
        return not self._to_arm.unfinished_tasks

    def __len__(self) -> int:
        return len(self._held)

    # -- what the committer tells it --------------------------------------------------------
    def hold(self, owner: A, job: Job, version: int, worker_id: str) -> None:
        """A claim was just created (version 0, lease = the job's timeout) with the record
        at ``version``: watch it."""
        attempt = job.attempt_number
        lease = Lease(worker_id, attempt, float(job.timeout))
        self._held[job.id] = _Held(owner, job.id, attempt, lease, 0, version, self._clock())
        self._arm(job.id)

    def release(self, job_id: str, owner: A) -> None:
        """The attempt ended on its own (its end is being recorded): stop watching."""
        held = self._held.get(job_id)
        if held is not None and held.owner is owner:
            del self._held[job_id]
            self._gone.discard(job_id)

    def renew(self, owner: A, job_id: str, seconds: float) -> None:
        held = self._held.get(job_id)
        if held is None or held.owner is not owner or held.silent:
            return  # an attempt already over, or of an older session: nothing to renew
        held.wanted = seconds

    def claim_changed(self, event: ClaimChanged) -> None:
        held = self._held.get(event.job_id)
        if held is None or held.attempt != event.attempt:
            return  # our own end deleted it, or an older attempt's watch
        if event.type == EventType.DELETED:
            self._gone.add(event.job_id)
        elif event.type != EventType.NONE:
            self._arm(event.job_id)  # our own renewal changed it: watch again
        # NONE: the connection dropped; the reconnection's recheck covers it

    def session_changed(self, event: SessionChanged) -> None:
        if event.state == ConnectionState.SUSPENDED:
            if self._suspended_since is None:
                self._suspended_since = self._clock()
        elif event.state == ConnectionState.LOST:
            self._session_over = True
        elif event.state == ConnectionState.CONNECTED:
            self._suspended_since = None
            self._recheck = True

    # -- the committer's I/O, once per round ------------------------------------------------
    def next_wake(self) -> float | None:
        """Seconds until something here is due (a deferred write, the suspension limit)."""
        now = self._clock()
        times = []
        if self.session.connected.is_set():  # else nothing is written: the reconnection wakes
            times = [self._write_at(h) for h in self._held.values() if h.wanted is not None]
        if self._suspended_since is not None and self._held:
            times.append(self._suspended_since + self.session.session_timeout)
        # a floor: a write that failed for a connection not yet reported lost is not retried
        # in a busy loop
        return max(0.01, min(times) - now) if times else None

    def step(self) -> list[tuple[A, str]]:
        """Do what is due; the attempts that are over now, with the reason (each once)."""
        over: list[tuple[A, str]] = []
        now = self._clock()
        # connected again with the CONNECTED event still queued (the committer was busy):
        # not too long, whatever the stale mark says
        too_long = (
            self._suspended_since is not None
            and not self.session.connected.is_set()
            and now - self._suspended_since >= self.session.session_timeout
        )
        if self._session_over or too_long:
            if self._held:
                why = "lost" if self._session_over else "suspended past its timeout"
                log.warning("session %s: stopping %d running attempt(s)", why, len(self._held))
            over = [(h.owner, SESSION) for h in self._held.values()]
            self._held.clear()
            self._gone.clear()
            self._session_over = False
            return over
        if not self.session.connected.is_set():
            return over
        try:
            if self._recheck:
                self._recheck = False
                self._check_all()
            for held in list(self._held.values()):
                if held.wanted is not None and self._write_at(held) <= now:
                    self._write(held)
            if self._gone:
                over = self._reasons()
        except ConnectionLost:
            self._recheck = True  # the reconnection reads everything again
        return over

    # -- the parts ---------------------------------------------------------------------------
    def _write_at(self, held: _Held[A]) -> float:
        return held.written + WRITE_EVERY * (held.lease.seconds or 0.0)

    def _arm(self, job_id: str) -> None:
        if self._armer is None:
            self._armer = threading.Thread(target=self._arming, name="claim-watches", daemon=True)
            self._armer.start()
        self._to_arm.put((job_id, self._held[job_id].attempt))

    def _arming(self) -> None:
        while True:
            item = self._to_arm.get()
            try:
                if item is None:
                    return
                self._watch(*item)
            except Exception:
                log.exception("could not watch a claim")
            finally:
                self._to_arm.task_done()

    def _watch(self, job_id: str, attempt: int) -> None:
        """On the watch thread: watch the claim; tell the committer if it is gone already."""

        def fired(event: WatchEvent) -> None:
            self._notify(ClaimChanged(job_id, attempt, event.type))

        try:
            stat = self.session.exists(self.layout.claim(job_id), watch=fired)
        except ConnectionLost:
            return  # the reconnection reads and watches every claim again
        if stat is None:
            self._notify(ClaimChanged(job_id, attempt, EventType.DELETED))

    def _check_all(self) -> None:
        """After a reconnection: every claim in one pipelined read, then watched again."""
        read = self.session.get_many([self.layout.claim(j) for j in self._held])
        for job_id, held in list(self._held.items()):
            found = read.get(self.layout.claim(job_id))
            lease = parse_lease(found[0]) if found is not None else None
            if found is None or lease is None or lease.attempt != held.attempt:
                self._gone.add(job_id)
                continue
            if found[1].version > held.version:
                # our own write whose reply the disconnection lost: it applied
                held.version, held.lease = found[1].version, lease
            self._arm(job_id)

    def _write(self, held: _Held[A]) -> None:
        assert held.wanted is not None
        lease = held.lease.renewed(held.wanted)
        # the record's version pins the attempt: the claim's version alone would not, since
        # the next attempt's claim starts at version 0 again, as ours did
        ops: list[Op] = [
            Check(self.layout.job(held.job_id), held.record_version),
            SetData(self.layout.claim(held.job_id), lease.to_bytes(), held.version),
        ]
        try:
            results = self.session.multi(ops)
        except TransactionFailed as failed:
            if isinstance(failed.error, NotPermitted):
                self._silence(held)
            else:
                self._gone.add(held.job_id)  # moved on (and maybe another attempt's now)
                held.wanted = None
            return
        except NotPermitted:
            self._silence(held)
            return
        stat = results[1]
        held.version = stat.version if isinstance(stat, Stat) else held.version + 1
        held.lease, held.wanted = lease, None
        held.written = self._clock()

    def _silence(self, held: _Held[A]) -> None:
        log.warning(
            "cannot renew the lease (a claim made before claims were writable); the attempt "
            "is timed by its timeout",
            extra={"job_id": held.job_id},
        )
        held.silent, held.wanted = True, None

    def _reasons(self) -> list[tuple[A, str]]:
        """Why each deleted claim's attempt is over: one pipelined read of the records."""
        gone = [j for j in self._gone if j in self._held]
        read = self.session.get_many([self.layout.job(j) for j in gone])
        self._gone.clear()  # after the read: a lost connection keeps them for the next round
        over: list[tuple[A, str]] = []
        for job_id in gone:
            found = read.get(self.layout.job(job_id))
            reason = LEASE
            if found is not None:
                try:
                    if Job.from_bytes(found[0]).state == JobState.CANCELLED:
                        reason = CANCELLED
                except (ZkqError, ValueError, TypeError, KeyError):
                    pass  # unreadable here (a newer schema): over all the same
            over.append((self._held.pop(job_id).owner, reason))
        return over

"""Jobs in ZooKeeper: read them, and run the transitions of :mod:`zkq.coordinator.lifecycle`.

Two retry disciplines, because a multi that died with ConnectionLoss may or may not have
been applied:

- *fenced* writers (a worker's start, complete, fail) hold the version they read.  After a
  transient error they re-read: the record holding exactly the bytes they wrote means the
  multi went through; the same version as before means try again; anything else means
  another actor moved the job on, and the write is refused with :class:`Fenced`.  They
  never rebase onto a newer version: that would undo a requeue or a cancel.  They live in
  :mod:`zkq.coordinator.fenced`, on top of this store.
- *deciding* writers (submit, cancel, an operator's revive, the leader's assign and
  requeue) re-read and decide again from what they find, because their decision depends
  only on the current state.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from zkq.coordinator import lifecycle, promotion
from zkq.coordinator.errors import Conflict, JobIdTaken, JobNotFound, LeadershipLost, ZkqError
from zkq.coordinator.ids import validate_job_id
from zkq.coordinator.job import AttemptOutcome, Job, JobSpec, JobState, Limits
from zkq.coordinator.lifecycle import Batch
from zkq.coordinator.parents import Parents
from zkq.coordinator.paths import Layout, bucket_of
from zkq.coordinator.zk import (
    Check,
    Create,
    NodeExists,
    NoNode,
    Op,
    OpResult,
    TransactionFailed,
    ZkSession,
    zk_errors,
)
from zkq.coordinator.zk.ops import CREATE_ACL_BYTES

log = logging.getLogger(__name__)

#: keep each multi well under jute.maxbuffer (1 MB), whatever the payloads
MAX_MULTI_BYTES = 512 * 1024
#: how many times one commit recreates a bucket deleted under it before giving up
MAX_PARENT_REPAIRS = 5
#: how many times a deciding writer reads and decides again before giving up
MAX_DECISIONS = 20

T = TypeVar("T")
U = TypeVar("U")


class JobStore:
    """Jobs of one cluster, bound to one session and root (a kazoo-style recipe)."""

    def __init__(self, session: ZkSession, limits: Limits | None = None) -> None:
        self.session = session
        self.layout: Layout = session.settings.layout
        self.limits = limits or Limits()
        self.parents = Parents(session)

    # -- committing --------------------------------------------------------------------------
    def commit(self, ops: Sequence[Op]) -> list[OpResult]:
        """:meth:`ZkSession.multi`, recreating missing bucket nodes.

        A transition that creates a pending entry (a retry, a requeue, a revive, a spawned
        child) writes into the tick of the job's *creation* time, which the leader may have
        deleted as empty long ago.  ``NoNode`` on such a create means only that the bucket
        is gone: the multi rolled back, so making the parent and going again with the same
        versions is safe.  ``NoNode`` anywhere else (a claim or inbox entry) is an answer.
        """
        self._ensure_due_leaves(ops)
        repaired: set[str] = set()
        while True:
            try:
                return self.session.multi(ops)
            except TransactionFailed as failed:
                op = ops[failed.index]
                bucketed = op.path.startswith(
                    (self.layout.pending + "/", self.layout.jobs + "/", self.layout.scheduled + "/")
                )
                if not (isinstance(op, Create) and isinstance(failed.error, NoNode) and bucketed):
                    raise
                parent = op.path.rsplit("/", 1)[0]
                # each repair must make progress (a bucket not made before), so a group of
                # many retries into many buckets commits, and nothing loops
                if parent in repaired or len(repaired) >= max(MAX_PARENT_REPAIRS, len(ops)):
                    raise
                repaired.add(parent)
                self.parents.forget(parent)
                self.session.ensure_path(parent)

    def _ensure_due_leaves(self, ops: Sequence[Op]) -> None:
        """Make the due-time leaves ``ops`` create entries in: a retry waiting out its
        backoff (or a child spawned for later) writes into a leaf of its own due second,
        which rarely exists yet, and one group commit holds many."""
        made = {op.path.rsplit("/", 1)[0] for op in ops if isinstance(op, Create)}
        self.parents.ensure(sorted(p for p in made if p.startswith(self.layout.scheduled + "/")))

    # -- reading ---------------------------------------------------------------------------
    def read(self, job_id: str) -> tuple[Job, int, bytes]:
        """One read, no retry: the record, its version and its bytes as stored."""
        try:
            raw, stat = self.session.get(self.layout.job(job_id))
        except NoNode:
            raise JobNotFound(job_id) from None
        return Job.from_bytes(raw), stat.version, raw

    def get_versioned(self, job_id: str, deadline: float | None = None) -> tuple[Job, int]:
        validate_job_id(job_id)
        with zk_errors():
            job, version, _ = self.session.retry(lambda: self.read(job_id), deadline)
        return job, version

    def get(self, job_id: str, deadline: float | None = None) -> Job:
        return self.get_versioned(job_id, deadline)[0]

    def get_many(
        self, job_ids: Sequence[str], deadline: float | None = None
    ) -> dict[str, tuple[Job, int]]:
        """Pipelined reads (one round trip); jobs that no longer exist are left out.  With a
        ``deadline`` (``time.monotonic()``), gives up with ``Timeout`` when it passes."""
        return self.read_many(job_ids, deadline)[0]

    def read_many(
        self, job_ids: Sequence[str], deadline: float | None = None
    ) -> tuple[dict[str, tuple[Job, int]], set[str]]:
        """:meth:`get_many`, also saying which records exist but cannot be read here (a
        newer ``schema`` written by a newer zkq during a rolling upgrade, or damage).  What
        nobody here understands must be left alone, not taken for a missing job: a newer
        leader will move it."""
        read = self.session.get_many([self.layout.job(jid) for jid in job_ids], deadline)
        found: dict[str, tuple[Job, int]] = {}
        unreadable: set[str] = set()
        for jid in job_ids:
            entry = read.get(self.layout.job(jid))
            if entry is None:
                continue
            raw, stat = entry
            try:
                found[jid] = (Job.from_bytes(raw), stat.version)
            except (ZkqError, ValueError, TypeError, KeyError) as exc:
                # a record nobody can read must not stop everyone reading the others
                log.error("job record %s is unreadable, left alone: %s", jid, exc)
                unreadable.add(jid)
        return found, unreadable

    def wait(self, job_id: str, timeout: float, until: Callable[[Job], bool] | None = None) -> Job:
        """Block until the job ends (or ``until(job)`` holds) or ``timeout`` passes; return
        the record as it is then.  One data watch on the one job: no polling, no herd."""
        until = until or (lambda job: job.terminal)
        deadline = time.monotonic() + timeout
        changed = threading.Event()

        def on_change(_event: Any) -> None:
            changed.set()

        path = self.layout.job(validate_job_id(job_id))
        while True:
            changed.clear()
            with zk_errors():
                try:
                    raw, _ = self.session.retry(
                        lambda: self.session.get(path, watch=on_change), deadline
                    )
                except NoNode:
                    raise JobNotFound(job_id) from None
            job = Job.from_bytes(raw)
            remaining = deadline - time.monotonic()
            if until(job) or remaining <= 0:
                return job
            changed.wait(remaining)

    # -- submit ------------------------------------------------------------------------------
    def ensure_parents(self, job: Job, force: bool = False) -> None:
        parents = [
            self.layout.job_tick(*bucket_of(job.id)),
            # a job for later waits in its due bucket (a batch of them spreads over many
            # due ticks: made here, not by commit's repair, which fixes a few per multi)
            self.layout.scheduled_leaf(job.run_at, job.id)
            if job.state == JobState.SCHEDULED and job.run_at is not None
            else self.layout.pending_shard(job.type, job.id),
        ]
        self.parents.ensure(parents, force)

    def submit(self, spec: JobSpec, deadline: float | None = None) -> Job:
        return self.submit_many([spec], deadline)[0]

    def submit_many(self, specs: Sequence[JobSpec], deadline: float | None = None) -> list[Job]:
        """Write new jobs in as few transactions as keep each under :data:`MAX_MULTI_BYTES`.

        Idempotent: a job whose id exists with the same spec is returned as it stands (a
        retry after a lost reply); with another spec it is :class:`JobIdTaken`.
        """
        now = time.time()
        jobs = [spec.to_job(now, self.limits) for spec in specs]
        out: dict[str, Job] = {}
        with zk_errors():
            for batch in _batches(jobs):
                for job in batch:
                    self.ensure_parents(job)
                out.update(self._submit_batch(batch, deadline))
        return [out[job.id] for job in jobs]

    def _submit_batch(self, batch: list[Job], deadline: float | None) -> dict[str, Job]:
        steps = Batch(tuple(lifecycle.submit(self.layout, job) for job in batch))

        def attempt() -> dict[str, Job]:
            try:
                self.commit(steps.ops)
                return {job.id: job for job in batch}
            except TransactionFailed as failed:
                position = steps.culprit(failed.index)
                assert position is not None  # a submission has no head ops
                culprit = batch[position]
                if isinstance(failed.error, NodeExists) and len(batch) > 1:
                    # some of these went in before a lost reply: settle them one by one
                    return {job.id: self._submit_batch([job], deadline)[job.id] for job in batch}
                if isinstance(failed.error, NodeExists):
                    stored = self.read(culprit.id)[0]
                    # compare as stored: JSON turns tuples into lists, int keys into str
                    if stored.spec() != json.loads(json.dumps(culprit.spec())):
                        raise JobIdTaken(
                            f"job id {culprit.id} is taken by a different job: "
                            "choose a new id, or resend the same job"
                        ) from None
                    return {culprit.id: stored}
                raise

        return self.session.retry(attempt, deadline, "submit")

    # -- deciding writes -------------------------------------------------------------------
    def _exists(self, path: str) -> bool:
        return self.session.exists(path) is not None

    def decide(self, what: str, attempt: Callable[[], T], deadline: float | None) -> T:
        """Run a deciding writer: an attempt reads, decides and commits; a rolled-back multi
        means the job moved while we looked, so it reads and decides again (a bounded number
        of times: a job does not change state endlessly)."""

        def bounded() -> T:
            for _ in range(MAX_DECISIONS):
                try:
                    return attempt()
                except TransactionFailed:
                    continue
            raise Conflict(f"{what}: the job kept changing under us; try again")

        with zk_errors():
            return self.session.retry(bounded, deadline, what)

    def cancel(self, job_id: str, deadline: float | None = None) -> Job:
        validate_job_id(job_id)
        tries = 0

        def attempt() -> Job:
            nonlocal tries
            tries += 1
            job, version, _ = self.read(job_id)
            if job.state == JobState.CANCELLED and tries > 1:
                return job  # our own cancel, whose reply was lost
            claim = job.state == JobState.RUNNING and self._exists(self.layout.claim(job_id))
            inbox = bool(job.worker) and self._exists(
                self.layout.inbox_entry(job.worker or "", job_id)
            )
            step = lifecycle.cancel(self.layout, job, version, time.time(), claim, inbox)
            self.commit(step.ops)
            return step.job

        return self.decide("cancel", attempt, deadline)

    def revive(
        self, job_id: str, deadline: float | None = None, run_at: float | None = None
    ) -> Job:
        """Send a failed, dead or cancelled job back to pending with fresh attempts (an
        operator's ``zkq requeue``), or ``scheduled`` until a later ``run_at`` (``zkq
        requeue --at``); :class:`InvalidTransition` for any other state."""
        validate_job_id(job_id)
        sent: int | None = None  # the version our last revive was written against

        def attempt() -> Job:
            nonlocal sent
            job, version, _ = self.read(job_id)
            if sent is not None and not job.terminal and version > sent:
                # Only a revive takes a job out of failed, dead or cancelled: ours, whose
                # reply was lost (the leader may have assigned the job since), or another
                # operator's at the same moment.  Either way the job is back in the queue.
                return job
            step = lifecycle.revive(self.layout, job, version, time.time(), run_at=run_at)
            sent = version
            self.commit(step.ops)
            return step.job

        return self.decide("revive", attempt, deadline)

    def requeue(
        self,
        job_id: str,
        outcome: AttemptOutcome,
        reason: str,
        spend_attempt: bool = True,
        expected_version: int | None = None,
        only_unstarted: bool = False,
        holder: str | None = None,
        fence: str | None = None,
        by: str = "leader",
        deadline: float | None = None,
        delay: float = 0.0,
        claim_version: int | None = None,
    ) -> Job | None:
        """Take an assigned or running job back; ``None`` when there was nothing to take.

        The leader decides to take a job back from what it saw (a worker gone, an attempt
        overdue), and the job may have moved on since: another leader may already have
        requeued it and given it to a live worker.  So the requeue is conditional on what
        was seen.  ``holder``: take it only from this worker (the lost or draining one).
        ``expected_version``: only if the record is still at that version (what the caller
        judged overdue), so an attempt that started meanwhile is left alone.  ``by``: who
        asks, for the requeue entry in the record's history (``leader``, ``operator``).
        ``deadline``: a caller that must answer in time (an operator's bulk requeue) gives
        one; the leader's own requeues wait out a disconnection instead.  ``delay``: a
        retry's backoff, the job waits scheduled that long (:func:`lifecycle.requeue`).

        ``fence``: the leader's election node, checked in the same multi as in
        :meth:`assign_many`; :class:`LeadershipLost` once it is gone.  ``claim_version``:
        the lease judged overdue; a claim renewed since (a heartbeat) wins: None."""
        head = (Check(fence),) if fence else ()

        def attempt() -> Job | None:
            try:
                job, version, _ = self.read(job_id)
            except JobNotFound:
                return None
            if job.state not in (JobState.ASSIGNED, JobState.RUNNING) or not job.worker:
                return None
            if holder is not None and job.worker != holder:
                return None  # no longer that worker's: somebody moved it on meanwhile
            if expected_version is not None and version != expected_version:
                return None
            if only_unstarted and job.state != JobState.ASSIGNED:
                return None
            lease = self.session.exists(self.layout.claim(job_id))
            if claim_version is not None and lease is not None and lease.version != claim_version:
                return None
            claim = lease is not None
            inbox = self._exists(self.layout.inbox_entry(job.worker, job_id))
            step = lifecycle.requeue(
                self.layout,
                job,
                version,
                outcome,
                reason,
                time.time(),
                claim,
                inbox,
                spend_attempt,
                by,
                delay,
                claim_version if claim else None,
            )
            self.commit_fenced(Batch((step,), head))
            return step.job

        return self.decide("requeue", attempt, deadline)

    def promote_many(
        self, choices: Sequence[tuple[Job, int]], fence: str | None = None
    ) -> tuple[list[Job], list[tuple[Job, BaseException]]]:
        """Promote due (job, version) pairs (:func:`promotion.promote_many`)."""
        return promotion.promote_many(self, choices, fence, time.time())

    def commit_fenced(self, batch: Batch) -> list[OpResult]:
        """:meth:`commit` a batch whose head ops are the leader's fence: a failure there
        is :class:`LeadershipLost`, not an answer about a job."""
        try:
            return self.commit(batch.ops)
        except TransactionFailed as failed:
            if batch.culprit(failed.index) is None:
                raise LeadershipLost(
                    "the election node is gone: this coordinator no longer leads"
                ) from None
            raise

    def assign_many(
        self, choices: Sequence[tuple[Job, int, str]], fence: str | None = None
    ) -> tuple[list[Job], list[tuple[Job, BaseException]]]:
        """Assign (job, version, worker) triples in one multi.  A job whose op fails is set
        aside with its error and the rest go again, so one stale entry costs one retry, not
        the batch.  Returns (assigned, refused).

        ``fence``: a node that must still exist for the multi to apply, the leader's own
        election node.  It is an ephemeral of the leader's session, so once that session
        has expired no assignment of the old leader goes through, whatever its threads
        were doing when it lost the session; :class:`LeadershipLost` says so."""
        assigned: list[Job] = []
        refused: list[tuple[Job, BaseException]] = []
        now = time.time()
        head = (Check(fence),) if fence else ()
        for group in byte_groups(list(choices), lambda c: len(c[0].to_bytes())):
            remaining = group
            while remaining:
                batch = Batch(
                    tuple(lifecycle.assign(self.layout, j, v, w, now) for j, v, w in remaining),
                    head,
                )
                try:
                    with zk_errors():
                        self.session.multi(batch.ops)
                    assigned.extend(step.job for step in batch.steps)
                    break
                except TransactionFailed as failed:
                    position = batch.culprit(failed.index)
                    if position is None:
                        raise LeadershipLost(
                            "the election node is gone: this coordinator no longer leads"
                        ) from None
                    refused.append((remaining[position][0], failed.error))
                    remaining = remaining[:position] + remaining[position + 1 :]
        return assigned, refused


def byte_groups(items: list[U], size_of: Callable[[U], int]) -> Iterator[list[U]]:
    """Consecutive groups whose multis stay under :data:`MAX_MULTI_BYTES`."""
    group: list[U] = []
    size = 0
    for item in items:
        cost = size_of(item) + 200  # paths and framing
        if group and size + cost > MAX_MULTI_BYTES:
            yield group
            group, size = [], 0
        group.append(item)
        size += cost
    if group:
        yield group


def _batches(jobs: list[Job]) -> Iterator[list[Job]]:
    # a submission is two creates (record, pending entry), and each carries its ACL
    return byte_groups(jobs, lambda job: len(job.to_bytes()) + 2 * CREATE_ACL_BYTES)

"""Jobs in ZooKeeper: read them, and run the transitions of :mod:`zkq.coordinator.lifecycle`.

Two retry disciplines, because a multi that died with ConnectionLoss may or may not have
been applied:

- *fenced* writers (a worker's start, complete, fail) hold the version they read.  After a
  transient error they re-read: the record holding exactly the bytes they wrote means the
  multi went through; the same version as before means try again; anything else means
  another actor moved the job on, and the write is refused with :class:`Fenced`.  They
  never rebase onto a newer version: that would undo a requeue or a cancel.
- *deciding* writers (submit, cancel, the leader's assign and requeue) re-read and decide
  again from what they find, because their decision depends only on the current state.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kazoo.exceptions import NodeExistsError, NoNodeError

from zkq.coordinator import lifecycle
from zkq.coordinator.errors import (
    Conflict,
    Fenced,
    InvalidInput,
    JobIdTaken,
    JobNotFound,
    LeadershipLost,
    PayloadTooLarge,
    Unavailable,
    ZkqError,
)
from zkq.coordinator.ids import id_time, new_job_id, validate_job_id
from zkq.coordinator.job import (
    Job,
    JobState,
    Limits,
    check_payload,
    check_result,
    validate_spec,
)
from zkq.coordinator.paths import Layout, bucket_of
from zkq.coordinator.zk import Op, TransactionFailed, ZkSession, commit, op_check, zk_errors

log = logging.getLogger(__name__)

#: keep each multi well under jute.maxbuffer (1 MB), whatever the payloads
MAX_MULTI_BYTES = 512 * 1024
#: how many times one commit recreates a bucket deleted under it before giving up
MAX_PARENT_REPAIRS = 5
#: how many times a deciding writer reads and decides again before giving up
MAX_DECISIONS = 20
#: how far from now a submitter's own job id may be dated (its clock may be off a little)
ID_CLOCK_SKEW = 300.0

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class JobSpec:
    """What a submitter asks for.  ``job_id`` is chosen here when not given."""

    type: str
    payload: Any = None
    priority: int = 0
    max_attempts: int = 1
    timeout: float = 300.0
    job_id: str | None = None
    tenant: str | None = None
    parent: str | None = None

    def to_job(self, now: float, limits: Limits) -> Job:
        validate_spec(self.type, self.priority, self.max_attempts, self.timeout)
        check_payload(self.payload, limits)
        job_id = new_job_id()
        if self.job_id:
            job_id = validate_job_id(self.job_id)
            if abs(id_time(job_id) - now) > ID_CLOCK_SKEW:
                # an id from another era would jump the FIFO order and land in buckets
                # that were pruned long ago (or never will be)
                raise InvalidInput(
                    f"job id {job_id} is dated {id_time(job_id) - now:+.0f}s from now: "
                    "make ids when submitting (a ULID from the current time)"
                )
        return Job(
            id=job_id,
            type=self.type,
            payload=self.payload,
            priority=self.priority,
            max_attempts=self.max_attempts,
            timeout=float(self.timeout),
            created_at=now,
            updated_at=now,
            tenant=self.tenant,
            parent=self.parent,
        )


class JobStore:
    """Jobs of one cluster, bound to one session and root (a kazoo-style recipe)."""

    def __init__(self, session: ZkSession, limits: Limits | None = None) -> None:
        self.session = session
        self.client = session.client
        self.layout: Layout = session.settings.layout
        self.limits = limits or Limits()
        self._known_parents: set[str] = set()
        self._parents_lock = threading.Lock()

    # -- committing --------------------------------------------------------------------------
    def commit(self, ops: Sequence[Op]) -> list[Any]:
        """:func:`zkq.coordinator.zk.commit`, recreating missing bucket nodes.

        A transition that creates a pending entry (a retry, a requeue, a revive, a spawned
        child) writes into the tick of the job's *creation* time, which the leader may have
        deleted as empty long ago.  ``NoNode`` on such a create means only that the bucket
        is gone: the multi rolled back, so making the parent and going again with the same
        versions is safe.  ``NoNode`` anywhere else (a claim or inbox entry) is an answer.
        """
        for _ in range(MAX_PARENT_REPAIRS):
            try:
                return commit(self.client, ops)
            except TransactionFailed as failed:
                name, args, _ = ops[failed.index]
                path = str(args[0])
                bucketed = path.startswith(self.layout.pending + "/") or path.startswith(
                    self.layout.jobs + "/"
                )
                if not (name == "create" and isinstance(failed.error, NoNodeError) and bucketed):
                    raise
                self.client.ensure_path(path.rsplit("/", 1)[0])
        return commit(self.client, ops)

    # -- reading ---------------------------------------------------------------------------
    def _read(self, job_id: str) -> tuple[Job, int, bytes]:
        try:
            raw, stat = self.client.get(self.layout.job(job_id))
        except NoNodeError:
            raise JobNotFound(job_id) from None
        return Job.from_bytes(raw), stat.version, raw

    def get_versioned(self, job_id: str, deadline: float | None = None) -> tuple[Job, int]:
        validate_job_id(job_id)
        with zk_errors():
            job, version, _ = self.session.retry(lambda: self._read(job_id), deadline)
        return job, version

    def get(self, job_id: str, deadline: float | None = None) -> Job:
        return self.get_versioned(job_id, deadline)[0]

    def get_many(self, job_ids: Sequence[str]) -> dict[str, tuple[Job, int]]:
        """Pipelined reads; jobs that no longer exist are left out."""
        with zk_errors():
            pending = [(jid, self.client.get_async(self.layout.job(jid))) for jid in job_ids]
            found: dict[str, tuple[Job, int]] = {}
            for jid, async_result in pending:
                try:
                    raw, stat = async_result.get()
                except NoNodeError:
                    continue
                try:
                    found[jid] = (Job.from_bytes(raw), stat.version)
                except (ZkqError, ValueError, TypeError, KeyError) as exc:
                    # a record nobody can read must not stop everyone reading the others
                    log.error("job record %s is unreadable, left alone: %s", jid, exc)
        return found

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
                        lambda: self.client.get(path, watch=on_change), deadline
                    )
                except NoNodeError:
                    raise JobNotFound(job_id) from None
            job = Job.from_bytes(raw)
            remaining = deadline - time.monotonic()
            if until(job) or remaining <= 0:
                return job
            changed.wait(remaining)

    # -- submit ------------------------------------------------------------------------------
    def ensure_parents(self, job: Job, force: bool = False) -> None:
        parents = (
            self.layout.job_tick(*bucket_of(job.id)),
            self.layout.pending_shard(job.type, job.id),
        )
        for parent in parents:
            with self._parents_lock:
                known = parent in self._known_parents
            if force or not known:
                self.session.retry(functools.partial(self.client.ensure_path, parent))
                with self._parents_lock:
                    if len(self._known_parents) > 10_000:
                        self._known_parents.clear()
                    self._known_parents.add(parent)

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
        ops: list[Op] = []
        for job in batch:
            ops.extend(lifecycle.submit(self.layout, job))

        def attempt() -> dict[str, Job]:
            try:
                self.commit(ops)
                return {job.id: job for job in batch}
            except TransactionFailed as failed:
                culprit = batch[failed.index // 2]
                if isinstance(failed.error, NodeExistsError) and len(batch) > 1:
                    # some of these went in before a lost reply: settle them one by one
                    return {job.id: self._submit_batch([job], deadline)[job.id] for job in batch}
                if isinstance(failed.error, NodeExistsError):
                    stored = self._read(culprit.id)[0]
                    # compare as stored: JSON turns tuples into lists, int keys into str
                    if stored.spec() != json.loads(json.dumps(culprit.spec())):
                        raise JobIdTaken(
                            f"job id {culprit.id} is taken by a different job: "
                            "choose a new id, or resend the same job"
                        ) from None
                    return {culprit.id: stored}
                raise

        return self.session.retry(attempt, deadline, "submit")

    # -- worker's fenced writes ------------------------------------------------------------
    def _fenced(
        self, job_id: str, version: int, step: lifecycle.Step, settle_first: bool = False
    ) -> tuple[Job, int]:
        """Commit ``step`` against ``version``; see the module doc for the retry rule.

        ``settle_first``: the step may already have been applied (a multi carrying it died
        with ConnectionLoss), so read before writing."""
        written = step.job.to_bytes()
        first = not settle_first

        def attempt() -> tuple[Job, int]:
            nonlocal first
            if not first:
                try:
                    _, current_version, raw = self._read(job_id)
                except JobNotFound:
                    raise Fenced(f"job {job_id} is gone") from None
                if raw == written:
                    return step.job, current_version
                if current_version != version:
                    raise Fenced(f"job {job_id} moved on (version {current_version})")
            first = False
            try:
                results = self.commit(step.ops)
            except TransactionFailed as failed:
                raise Fenced(
                    f"job {job_id}: {type(failed.error).__name__} at op {failed.index}; "
                    "another actor changed it"
                ) from None
            return step.job, _set_version(results, version)

        with zk_errors():
            return self.session.retry(attempt, None, "fenced write")

    def commit_fenced_many(
        self, items: Sequence[tuple[Job, int, lifecycle.Step]]
    ) -> list[Job | Fenced]:
        """Group commit of several workers' fenced steps (completions, failures): as few
        multis as keep each under :data:`MAX_MULTI_BYTES`.  A step whose op fails is set
        aside as :class:`Fenced` and the rest go again, as in :meth:`assign_many`; after a
        lost reply each step is settled on its own.  Returns, per item, the job as written
        or the Fenced refusal."""
        out: dict[int, Job | Fenced] = {}
        batch: list[int] = []
        size = 0
        for index, (_, _, step) in enumerate(items):
            cost = sum(len(args[1]) for name, args, _ in step.ops if len(args) > 1) + 200
            if batch and size + cost > MAX_MULTI_BYTES:
                self._commit_group(items, batch, out)
                batch, size = [], 0
            batch.append(index)
            size += cost
        if batch:
            self._commit_group(items, batch, out)
        return [out[i] for i in range(len(items))]

    def _commit_group(
        self,
        items: Sequence[tuple[Job, int, lifecycle.Step]],
        group: list[int],
        out: dict[int, Job | Fenced],
    ) -> None:
        remaining = list(group)
        while remaining:
            ops = [op for i in remaining for op in items[i][2].ops]
            try:
                with zk_errors():
                    self.commit(ops)
            except TransactionFailed as failed:
                # find whose op failed: steps carry different numbers of ops
                offset = 0
                for position, i in enumerate(remaining):
                    offset += len(items[i][2].ops)
                    if failed.index < offset:
                        job = items[i][0]
                        out[i] = Fenced(f"job {job.id}: {type(failed.error).__name__}")
                        del remaining[position]
                        break
                continue
            except Unavailable:
                for i in remaining:
                    job, version, step = items[i]
                    try:
                        out[i] = self._fenced(job.id, version, step, settle_first=True)[0]
                    except Fenced as refused:
                        out[i] = refused
                return
            for i in remaining:
                out[i] = items[i][2].job
            return

    def start_step(self, job: Job, version: int, worker_id: str) -> lifecycle.Step:
        return lifecycle.start(self.layout, job, version, worker_id, time.time())

    def start(self, job: Job, version: int, worker_id: str) -> tuple[Job, int]:
        return self._fenced(job.id, version, self.start_step(job, version, worker_id))

    def complete_step(
        self,
        job: Job,
        version: int,
        worker_id: str,
        result: Any,
        children: Sequence[JobSpec] = (),
    ) -> lifecycle.Step:
        """The completion of an attempt, ready to commit (alone or grouped).  Raises
        :class:`PayloadTooLarge` for a result over the limit."""
        check_result(result, self.limits)
        now = time.time()
        child_jobs = [
            JobSpec(
                type=c.type,
                payload=c.payload,
                priority=c.priority,
                max_attempts=c.max_attempts,
                timeout=c.timeout,
                tenant=job.tenant,
                parent=job.id,
            ).to_job(now, self.limits)
            for c in children
        ]
        spawned = sum(len(child.to_bytes()) for child in child_jobs)
        if spawned > MAX_MULTI_BYTES - self.limits.result_bytes - 64 * 1024:
            raise PayloadTooLarge(
                f"the {len(child_jobs)} children spawned take {spawned} bytes, more than one "
                "transaction may carry: spawn fewer, or pass references instead of data"
            )
        for child in child_jobs:
            with zk_errors():
                self.ensure_parents(child)
        return lifecycle.complete(self.layout, job, version, worker_id, result, now, child_jobs)

    def fail_step(
        self, job: Job, version: int, worker_id: str, error: dict[str, str]
    ) -> lifecycle.Step:
        return lifecycle.fail(self.layout, job, version, worker_id, error, time.time())

    def complete(
        self,
        job: Job,
        version: int,
        worker_id: str,
        result: Any,
        children: Sequence[JobSpec] = (),
    ) -> Job:
        step = self.complete_step(job, version, worker_id, result, children)
        return self._fenced(job.id, version, step)[0]

    def fail(self, job: Job, version: int, worker_id: str, error: dict[str, str]) -> Job:
        return self._fenced(job.id, version, self.fail_step(job, version, worker_id, error))[0]

    # -- deciding writes -------------------------------------------------------------------
    def _exists(self, path: str) -> bool:
        return self.client.exists(path) is not None

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
            job, version, _ = self._read(job_id)
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

    def requeue(
        self,
        job_id: str,
        outcome: str,
        reason: str,
        spend_attempt: bool = True,
        expected_version: int | None = None,
        only_unstarted: bool = False,
    ) -> Job | None:
        """Take an assigned or running job back; ``None`` when there was nothing to take.

        ``expected_version``: take it back only if the record is still at that version (what
        the caller judged overdue), so an attempt that started meanwhile is left alone."""

        def attempt() -> Job | None:
            try:
                job, version, _ = self._read(job_id)
            except JobNotFound:
                return None
            if job.state not in (JobState.ASSIGNED, JobState.RUNNING) or not job.worker:
                return None
            if expected_version is not None and version != expected_version:
                return None
            if only_unstarted and job.state != JobState.ASSIGNED:
                return None
            claim = self._exists(self.layout.claim(job_id))
            inbox = self._exists(self.layout.inbox_entry(job.worker, job_id))
            step = lifecycle.requeue(
                self.layout, job, version, outcome, reason, time.time(), claim, inbox, spend_attempt
            )
            self.commit(step.ops)
            return step.job

        return self.decide("requeue", attempt, None)

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
        head = [op_check(fence, -1)] if fence else []
        for group in _byte_groups(list(choices), lambda c: len(c[0].to_bytes())):
            remaining = group
            while remaining:
                steps = [lifecycle.assign(self.layout, j, v, w, now) for j, v, w in remaining]
                ops = head + [op for step in steps for op in step.ops]
                try:
                    with zk_errors():
                        commit(self.client, ops)
                    assigned.extend(s.job for s in steps)
                    break
                except TransactionFailed as failed:
                    if failed.index < len(head):
                        raise LeadershipLost(
                            "the election node is gone: this coordinator no longer leads"
                        ) from None
                    bad = (failed.index - len(head)) // 3  # three ops per assignment
                    refused.append((remaining[bad][0], failed.error))
                    remaining = remaining[:bad] + remaining[bad + 1 :]
        return assigned, refused


def _set_version(results: Sequence[Any], old: int) -> int:
    for result in results:
        version = getattr(result, "version", None)
        if version is not None:
            return int(version)
    return old + 1


def _byte_groups(items: list[U], size_of: Callable[[U], int]) -> Iterator[list[U]]:
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
    return _byte_groups(jobs, lambda job: len(job.to_bytes()))

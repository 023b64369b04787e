"""When the coordinator leader looks again at each assigned or running attempt.

An ephemeral node proves a worker alive, not that its job moves: every attempt has a
timeout, and the leader takes back one that runs past it.  The leader does not watch
starts (that would be a watch per job), so it schedules *looks*: it reads the record at
each, and sees there whether the attempt has started.

**One clock.**  Every duration is measured on the leader's own clock (monotonic in
production), from what the leader itself saw; never by comparing its clock with a time
another machine wrote (the worker's ``started_at``, the assigning leader's ``updated_at``).
A worker whose clock lags an hour would otherwise have every attempt look an hour overdue.
The price is precision: the leader learns of a start only at its next look, so it counts
the timeout from then, which is after the real start.  Hence the bound, for an attempt with
timeout ``T`` and the grace ``G``:

- never taken back earlier than ``T + G`` after it really started (by any clock, as long
  as the leader's runs at the rate of real time);
- taken back at most ``T + G + gap(T)`` after it started, where :func:`look_gap` is the
  longest the leader waits between two looks at an unstarted attempt
  (``min(30 s, max(G, T/4))``) — for the leader that saw it assigned.  A new leader counts
  from when it first sees the attempt running (its reconcile reads every inbox), so after
  a failover the bound grows by the time the failover took: later, never earlier.

**Leases.**  A running attempt's claim is its lease (:mod:`zkq.coordinator.lease`): each
renewal the worker writes moves the claim's version on.  At a look that finds a version it
has not seen, the leader extends the deadline to ``now + lease`` (never shortening it), on
its own clock again: a renewal made at worker time ``h`` is seen at a look ``L >= h``, so the
attempt is never taken back before ``h + lease + grace``.  One read per attempt per lease
period, no watch per job.

An attempt assigned but not started (queued behind the worker's running jobs: prefetch)
gets :data:`UNSTARTED_LIMIT` (or twice its timeout, if longer) from when the leader first
saw it assigned.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkq.coordinator.job import MAX_TIMEOUT_SECONDS, Job, JobState
from zkq.coordinator.lease import Lease

#: seconds an assigned job may wait in a live worker's inbox before it must have started
UNSTARTED_LIMIT = 300.0
#: the longest gap between two looks at an attempt not yet seen running
LOOK_GAP_LIMIT = 30.0


@dataclass
class Look:
    worker: str
    type: str
    at: float  # the next look, on the leader's clock
    since: float  # when this leader first saw the attempt (assigned or running)
    started: float | None = None  # when this leader first saw it running
    attempt: int = 0  # the attempt number it saw running then
    deadline: float | None = None  # the running attempt's lease ends then (leader's clock)
    lease_version: int | None = None  # the claim version that deadline was granted for


def look_gap(job: Job, grace: float) -> float:
    """How long the leader waits between looks at an attempt it has not seen start: short
    against the job's timeout (the error of the timeout), never so short that it reads a
    record every moment."""
    return min(LOOK_GAP_LIMIT, max(grace, job.timeout / 4))


class AttemptClock:
    """The looks, on one clock (whatever ``now`` its callers pass: the leader's)."""

    def __init__(self, grace: float = 2.0) -> None:
        self.grace = grace
        self._looks: dict[str, Look] = {}  # job id -> next look

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._looks

    def track(self, job: Job, worker_id: str, now: float) -> None:
        """Start timing ``worker_id``'s attempt at ``job``, as read at ``now``."""
        look = Look(worker_id, job.type, now, since=now)
        self._looks[job.id] = look
        look.at = self.observe(job, now) or now

    def observe(self, job: Job, now: float, claim: tuple[Lease, int] | None = None) -> float | None:
        """Take in the record (and its claim: lease and version, when read) as read at
        ``now``: when to look at it again, or None if the attempt is overdue now."""
        look = self._looks.get(job.id)
        if look is None:
            self.track(job, job.worker or "", now)
            look = self._looks[job.id]
        if job.state == JobState.RUNNING:
            lease, version = claim if claim is not None else (None, None)
            if lease is not None and lease.attempt not in (None, job.attempt_number):
                lease, version = None, None  # another attempt's claim: not this one's lease
            granted = min(MAX_TIMEOUT_SECONDS, lease.seconds or 0.0) if lease else 0.0
            if look.started is None or look.attempt != job.attempt_number:
                # the first sight of this attempt running: the start was at or before now
                # (by its number, which no later attempt repeats, unlike ``attempts``)
                look.started, look.attempt = now, job.attempt_number
                look.deadline = now + max(float(job.timeout), granted)
                look.lease_version = version
            elif version is not None and version != look.lease_version:
                # renewed since the last look (at or before now): never shorten.  Version 0
                # is the claim as created (no renewal), first read now: nothing to extend
                if version > 0:
                    look.deadline = max(look.deadline or now, now + granted)
                look.lease_version = version
            due = (look.deadline or look.started + job.timeout) + self.grace
            return due if due > now else None
        limit = look.since + max(UNSTARTED_LIMIT, 2 * job.timeout) + self.grace
        if limit <= now:
            return None
        return min(limit, now + look_gap(job, self.grace))

    def lease_version(self, job_id: str) -> int | None:
        """The claim version the running attempt's deadline was judged at."""
        look = self._looks.get(job_id)
        return None if look is None else look.lease_version

    def reschedule(self, job_id: str, at: float) -> None:
        look = self._looks.get(job_id)
        if look is not None:
            look.at = at

    def forget(self, job_id: str, worker_id: str | None = None) -> None:
        """Stop looking (of ``worker_id``'s attempt only, when given)."""
        look = self._looks.get(job_id)
        if look is not None and (worker_id is None or look.worker == worker_id):
            del self._looks[job_id]

    def due(self, now: float) -> list[str]:
        return [job_id for job_id, look in self._looks.items() if look.at <= now]

    def soonest(self) -> float | None:
        return min((look.at for look in self._looks.values()), default=None)

    def running_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for look in self._looks.values():
            counts[look.type] = counts.get(look.type, 0) + 1
        return counts

    def held_by_worker(self) -> dict[str, dict[str, int]]:
        """Assigned or running attempts per worker and type (for admission's caps)."""
        held: dict[str, dict[str, int]] = {}
        for look in self._looks.values():
            types = held.setdefault(look.worker, {})
            types[look.type] = types.get(look.type, 0) + 1
        return held

    def tracked(self) -> set[str]:
        """The ids of every attempt timed (for the leader's sweep)."""
        return set(self._looks)

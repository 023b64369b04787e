"""When the coordinator leader looks again at each assigned or running attempt.

An ephemeral node proves a worker alive, not that its job moves: every attempt has a
timeout, and the leader takes back one that runs past it.  The leader does not watch
starts (that would be a watch per job), so it schedules *looks*: the first when the attempt
could first be overdue, then as :func:`next_look` says, reading the record each time.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkq.coordinator.job import Job, JobState

#: seconds an assigned job may wait in a live worker's inbox before it must have started
UNSTARTED_LIMIT = 300.0


@dataclass
class Look:
    worker: str
    type: str
    at: float  # wall-clock time of the next look


class AttemptClock:
    def __init__(self, grace: float = 2.0) -> None:
        self.grace = grace
        self._looks: dict[str, Look] = {}  # job id -> next look

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._looks

    def track(self, job: Job, worker_id: str) -> None:
        began = job.started_at if job.state == JobState.RUNNING and job.started_at else None
        first = (began or job.updated_at) + job.timeout + self.grace
        self._looks[job.id] = Look(worker_id, job.type, first)

    def next_look(self, job: Job, now: float) -> float | None:
        """When to look at this attempt again, or None if it is overdue now.

        A running attempt is overdue its timeout after it started.  An assigned one may
        queue behind the worker's running jobs (prefetch); it gets :data:`UNSTARTED_LIMIT`
        (or twice its timeout, if longer) to start, and meanwhile is looked at once per
        timeout."""
        if job.state == JobState.RUNNING and job.started_at:
            due = job.started_at + job.timeout + self.grace
            return due if due > now else None
        limit = job.updated_at + max(UNSTARTED_LIMIT, 2 * job.timeout) + self.grace
        if limit <= now:
            return None
        return min(limit, now + job.timeout + self.grace)

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

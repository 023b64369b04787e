"""A worker's inbox as the worker sees it: the entries it took and still holds, and the
listing that finds new ones and offers those assigned to it.

The leader writes an assignment as the job's record (``assigned`` to the worker) and an
entry in the worker's ``inbox`` in one multi.  The worker lists its inbox under a child
watch and reads the new entries' records in one pipelined round.  An entry is *held* from
that listing until the pipeline lets its job go (started and ended, refused, or dropped);
a held entry is not offered twice.

Only a record assigned to this worker, as read, is offered, and never twice at one
version.  Everything else (the entry of our own running attempt, an entry whose job moved
on, an assignment whose claim was refused for a reason the record does not show) is let
go at once.  So a job let go unstarted can always be listed again without a loop: it is
offered again only once its record changed and is ours to start, which is exactly when
it must be (it may have been taken back and assigned to us anew while we held it, and the
listing skipped it as held).
"""

from __future__ import annotations

import threading

from zkq.coordinator.job import Job, JobState
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import WatchEvent
from zkq.worker.pipeline import Assignment


class Inbox:
    def __init__(self, store: JobStore, wake: threading.Event) -> None:
        self.store = store
        self._wake = wake
        # job id -> the session generation it was taken under; from listing until let go
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        # job id -> the record version it was last offered at (the listing thread's)
        self._offered: dict[str, int] = {}
        #: list again: a watch fired, a job was let go, the connection changed
        self.dirty = True

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def touch(self, _event: WatchEvent | None = None) -> None:
        """Something may have changed: list at the worker's next step."""
        self.dirty = True
        self._wake.set()

    def release(self, job_id: str, relist: bool = False) -> None:
        """The pipeline let go of a job.  ``relist``: list again, since the job may be back
        in the inbox, assigned to us anew, and no other event may ever come (an inbox full
        of such entries is one the leader sends nothing more to)."""
        with self._lock:
            self._held.pop(job_id, None)
        if relist:
            self.touch()

    def new_assignments(self, worker_id: str, generation: int) -> list[Assignment]:
        """List the inbox of ``worker_id`` (watching it) and read the entries not held yet:
        those assigned to it, now held.  ``NoNode`` when the inbox is gone; on any other
        error the inbox is listed again at the next step (its watch may not be set)."""
        self.dirty = False
        try:
            return self._list(worker_id, generation)
        except BaseException:
            self.dirty = True
            raise

    def _list(self, worker_id: str, generation: int) -> list[Assignment]:
        session, layout = self.store.session, self.store.layout
        job_ids = session.get_children(layout.inbox(worker_id), watch=self.touch)
        listed = set(job_ids)
        self._offered = {j: v for j, v in self._offered.items() if j in listed}
        with self._lock:
            new = sorted(j for j in job_ids if j not in self._held)
            self._held.update(dict.fromkeys(new, generation))
        if not new:
            return []
        # one pipelined round for every new entry, not a round trip per job
        try:
            records = self.store.get_many(new)
        except BaseException:
            for job_id in new:
                self.release(job_id)
            raise
        offered = []
        for job_id in new:
            found = records.get(job_id)
            if (
                found is None
                or not _assigned_to(found[0], worker_id)
                or self._offered.get(job_id) == found[1]
            ):
                self.release(job_id)  # gone, not ours to start, or offered as it is already
                continue
            self._offered[job_id] = found[1]
            offered.append(Assignment(found[0], found[1], worker_id, generation))
        return offered


def _assigned_to(job: Job, worker_id: str) -> bool:
    return job.state == JobState.ASSIGNED and job.worker == worker_id

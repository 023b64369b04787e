"""The znode layout: the one module that spells a ZooKeeper path.

::

    <root>/jobs/<era>/<tick>/<job_id>                    persistent  the job record (JSON)
    <root>/pending/<type>/<era>/<tick>/<pri>-<job_id>    persistent  ready-to-run entry, no data
    <root>/workers/<worker_id>                           ephemeral   who is alive, what it serves
    <root>/inbox/<worker_id>/<job_id>                    persistent  assignment by the leader
    <root>/claims/<job_id>                               ephemeral   the running worker's lock
    <root>/paused/<type>                                 persistent  the leader assigns none of it
    <root>/scheduled/<era>/<tick>/<born>/<due>-<job_id>  persistent  a job waiting for its run_at
    <root>/schedules/<owner>/<name>                      persistent  a periodic schedule (JSON)
    <root>/limits/<type>                                 persistent  per-type concurrency caps
    <root>/coordinator/election/...                      kazoo Election

Why two bucket levels (``<era>/<tick>``) rather than one: a ``get_children`` reply must stay
well under ``jute.maxbuffer`` (1 MB) at *any* backlog.  Job ids are ULIDs, whose first ten
Crockford base32 characters encode the millisecond timestamp.  The first six characters
(the *era*) change every 2**20 ms (17.5 minutes); the next two (the *tick*) every 2**10 ms
(about one second), so one era holds at most 1,024 ticks.  Hence:

- a tick holds the jobs created in about one second, a few thousand at ZooKeeper's write
  ceiling (about 30 bytes each in a listing);
- an era holds at most 1,024 ticks (4 bytes + 2 characters each);
- a year of un-pruned eras is about 30,000 names of 6 characters (about 300 KB).

The same two levels bound the pending entries of each type.  The bucket of a job is derived
from its id, so every actor computes the same path without a lookup.

Scheduled jobs are indexed by *due* time, ``<era>/<tick>`` of their ``run_at`` encoded as a
ULID time prefix (:func:`due_key`), then by ``<born>``, the era and tick of the job's own id
(its creation second).  The third level keeps every listing bounded: a due tick has no
bound of its own (jobs submitted over days may all name midnight), but what is created in
one second is bounded by ZooKeeper's write ceiling, as a pending tick is.  The entry's name
starts with the due millisecond (``<due>``, ten characters), so a listing sorts by due time.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIORITY_MIN = 0
PRIORITY_MAX = 999
ERA_CHARS = 6
TICK_CHARS = 2
#: the characters of a ULID that encode its millisecond
TIME_CHARS = 10


def bucket_of(job_id: str) -> tuple[str, str]:
    """(era, tick) of a time-ordered job id."""
    return job_id[:ERA_CHARS], job_id[ERA_CHARS : ERA_CHARS + TICK_CHARS]


def due_key(run_at: float) -> str:
    """The ten-character ULID time prefix of the millisecond ``run_at`` (epoch seconds)."""
    from zkq.coordinator.ids import id_for_time

    return id_for_time(run_at)[:TIME_CHARS]


def scheduled_name(run_at: float, job_id: str) -> str:
    """``<due>-<job_id>``: sorts by due time, then by creation."""
    return f"{due_key(run_at)}-{job_id}"


def parse_scheduled_name(name: str) -> tuple[str, str]:
    """Inverse of :func:`scheduled_name`: (due key, job_id)."""
    due, _, job_id = name.partition("-")
    return due, job_id


def pending_name(priority: int, job_id: str) -> str:
    """``<pri>-<job_id>``: sorts by priority (highest first), then by time.

    Priority 999 becomes ``000`` so that a plain lexical sort puts it first.
    """
    return f"{PRIORITY_MAX - priority:03d}-{job_id}"


def parse_pending_name(name: str) -> tuple[int, str]:
    """Inverse of :func:`pending_name`: (priority, job_id)."""
    inverted, _, job_id = name.partition("-")
    return PRIORITY_MAX - int(inverted), job_id


@dataclass(frozen=True)
class Layout:
    """Every znode path under one root (``/zkq`` by default)."""

    root: str = "/zkq"

    def __post_init__(self) -> None:
        if not self.root.startswith("/") or (self.root != "/" and self.root.endswith("/")):
            raise ValueError(
                f"root must be an absolute znode path without a trailing /: {self.root!r}"
            )

    def _join(self, *parts: str) -> str:
        base = "" if self.root == "/" else self.root
        return base + "/" + "/".join(parts)

    # -- jobs ---------------------------------------------------------------------------
    @property
    def jobs(self) -> str:
        return self._join("jobs")

    def job_era(self, era: str) -> str:
        return self._join("jobs", era)

    def job_tick(self, era: str, tick: str) -> str:
        return self._join("jobs", era, tick)

    def job(self, job_id: str) -> str:
        era, tick = bucket_of(job_id)
        return self._join("jobs", era, tick, job_id)

    # -- pending ------------------------------------------------------------------------
    @property
    def pending(self) -> str:
        return self._join("pending")

    def pending_type(self, job_type: str) -> str:
        return self._join("pending", job_type)

    def pending_era(self, job_type: str, era: str) -> str:
        return self._join("pending", job_type, era)

    def pending_tick(self, job_type: str, era: str, tick: str) -> str:
        return self._join("pending", job_type, era, tick)

    def pending_shard(self, job_type: str, job_id: str) -> str:
        era, tick = bucket_of(job_id)
        return self.pending_tick(job_type, era, tick)

    def pending_entry(self, job_type: str, priority: int, job_id: str) -> str:
        return self.pending_shard(job_type, job_id) + "/" + pending_name(priority, job_id)

    # -- scheduled: jobs waiting for their run_at, by due time -------------------------
    @property
    def scheduled(self) -> str:
        return self._join("scheduled")

    def scheduled_era(self, era: str) -> str:
        return self._join("scheduled", era)

    def scheduled_tick(self, era: str, tick: str) -> str:
        return self._join("scheduled", era, tick)

    def scheduled_born(self, era: str, tick: str, born: str) -> str:
        return self._join("scheduled", era, tick, born)

    def scheduled_leaf(self, run_at: float, job_id: str) -> str:
        """The bucket a scheduled job's entry is in: from its record alone."""
        era, tick = bucket_of(due_key(run_at))
        return self.scheduled_born(era, tick, "".join(bucket_of(job_id)))

    def scheduled_entry(self, run_at: float, job_id: str) -> str:
        return self.scheduled_leaf(run_at, job_id) + "/" + scheduled_name(run_at, job_id)

    # -- periodic schedules ---------------------------------------------------------------
    @property
    def schedules(self) -> str:
        return self._join("schedules")

    def schedules_of(self, owner: str) -> str:
        return self._join("schedules", owner)

    def schedule(self, owner: str, name: str) -> str:
        return self._join("schedules", owner, name)

    # -- workers, inboxes, claims -------------------------------------------------------
    @property
    def workers(self) -> str:
        return self._join("workers")

    def worker(self, worker_id: str) -> str:
        return self._join("workers", worker_id)

    @property
    def inboxes(self) -> str:
        return self._join("inbox")

    def inbox(self, worker_id: str) -> str:
        return self._join("inbox", worker_id)

    def inbox_entry(self, worker_id: str, job_id: str) -> str:
        return self._join("inbox", worker_id, job_id)

    @property
    def claims(self) -> str:
        return self._join("claims")

    def claim(self, job_id: str) -> str:
        return self._join("claims", job_id)

    # -- operator controls and coordination ---------------------------------------------
    @property
    def paused(self) -> str:
        return self._join("paused")

    def paused_type(self, job_type: str) -> str:
        return self._join("paused", job_type)

    @property
    def limits(self) -> str:
        return self._join("limits")

    def limit(self, job_type: str) -> str:
        return self._join("limits", job_type)

    @property
    def election(self) -> str:
        return self._join("coordinator", "election")

    def fixed_parents(self) -> list[str]:
        """Container nodes that exist for the life of a cluster."""
        return [
            self.jobs,
            self.pending,
            self.workers,
            self.inboxes,
            self.claims,
            self.paused,
            self.scheduled,
            self.schedules,
            self.limits,
            self.election,
        ]

    def shared_parents(self) -> list[str]:
        """The fixed parents every process makes sure of; the election's is made by the
        coordinators alone, the only role its ACL lets create there
        (:mod:`zkq.coordinator.acl`)."""
        return [p for p in self.fixed_parents() if p != self.election]

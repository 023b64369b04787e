"""Read-only counts of a running cluster: live workers and the depth of each queue.

For operators' views (the frontend's ``/v1/workers`` and ``/v1/queues``), not for the hot
path: nothing here sets a watch, and nothing is cached.  Every read has a deadline, because
a caller answering an HTTP request must not wait out a ZooKeeper outage.

A synchronous call queues its request while the client is disconnected and waits for the
reconnection with no time limit, so these functions read with the session's pipelined
reads under a deadline (which also pipelines the many small listings a queue spans: one
round trip per tree level, not one per shard).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from zkq.coordinator.ids import id_time
from zkq.coordinator.paths import due_key, parse_pending_name, parse_scheduled_name
from zkq.coordinator.registration import BadRegistration, WorkerInfo
from zkq.coordinator.zk import Stat, ZkSession, zk_errors


@dataclass(frozen=True)
class QueueStats:
    """One job type's queue, as ZooKeeper holds it now."""

    type: str
    depth: int  # pending entries
    oldest_age: float | None  # seconds since the oldest pending job was created
    running: int  # jobs whose worker holds the claim
    paused: bool


@dataclass(frozen=True)
class LiveWorker:
    """A live worker's registration, with the jobs in its inbox."""

    id: str
    registration: WorkerInfo
    inbox: list[str]
    session: str


class Reader:
    """Pipelined reads under one deadline (a ``time.monotonic()`` value)."""

    def __init__(self, session: ZkSession, deadline: float) -> None:
        self.session = session
        self.deadline = deadline

    def children(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """Children of each path; a path that does not exist has none."""
        found = self.session.get_children_many(paths, deadline=self.deadline)
        return {path: names or [] for path, names in found.items()}

    def data(self, paths: Sequence[str]) -> dict[str, tuple[bytes, Stat]]:
        """(data, stat) of each path that exists."""
        found = self.session.get_many(paths, deadline=self.deadline)
        return {path: entry for path, entry in found.items() if entry is not None}


def workers(session: ZkSession, deadline: float) -> list[LiveWorker]:
    """Every registered worker, by id."""
    layout = session.settings.layout
    with zk_errors():
        reader = Reader(session, deadline)
        ids = sorted(reader.children([layout.workers])[layout.workers])
        found = reader.data([layout.worker(w) for w in ids])
        inboxes = reader.children([layout.inbox(w) for w in ids])
    out: list[LiveWorker] = []
    for worker_id in ids:
        entry = found.get(layout.worker(worker_id))
        if entry is None:
            continue  # it went away between the two reads
        raw, stat = entry
        try:
            registration = WorkerInfo.from_bytes(worker_id, raw)
        except BadRegistration:
            registration = WorkerInfo.unreadable(worker_id)
        out.append(
            LiveWorker(
                id=worker_id,
                registration=registration,
                inbox=sorted(inboxes.get(layout.inbox(worker_id), [])),
                session=f"0x{stat.ephemeral_owner:x}",
            )
        )
    return out


def queues(session: ZkSession, deadline: float, now: float | None = None) -> list[QueueStats]:
    """Depth, age of the oldest entry and running count of every job type.

    Walks ``pending/<type>/<era>/<tick>`` one level at a time (each level one pipelined
    round of listings).  The running count comes from the claims, whose records name the
    type; a type with running jobs but an empty queue is listed too.
    """
    layout = session.settings.layout
    now = time.time() if now is None else now
    with zk_errors():
        reader = Reader(session, deadline)
        top = reader.children([layout.pending, layout.paused, layout.claims])
        types = top[layout.pending]
        eras = reader.children([layout.pending_type(t) for t in types])
        era_paths = [(t, era) for t in types for era in eras[layout.pending_type(t)]]
        ticks = reader.children([layout.pending_era(t, e) for t, e in era_paths])
        tick_paths = [
            (t, e, tick) for t, e in era_paths for tick in ticks[layout.pending_era(t, e)]
        ]
        entries = reader.children([layout.pending_tick(t, e, k) for t, e, k in tick_paths])
        claimed = reader.data([layout.job(job_id) for job_id in top[layout.claims]])
    depth: dict[str, int] = dict.fromkeys(types, 0)
    oldest: dict[str, str] = {}
    for t, e, k in tick_paths:
        for name in entries[layout.pending_tick(t, e, k)]:
            depth[t] += 1
            job_id = parse_pending_name(name)[1]
            if t not in oldest or job_id < oldest[t]:
                oldest[t] = job_id  # ULIDs sort by creation time
    running: dict[str, int] = {}
    for raw, _stat in claimed.values():
        try:
            job_type = json.loads(raw).get("type")
        except ValueError:
            continue
        if isinstance(job_type, str):
            running[job_type] = running.get(job_type, 0) + 1
    paused = set(top[layout.paused])
    return [
        QueueStats(
            type=t,
            depth=depth.get(t, 0),
            oldest_age=max(0.0, now - id_time(oldest[t])) if t in oldest else None,
            running=running.get(t, 0),
            paused=t in paused,
        )
        for t in sorted(set(depth) | set(running) | paused)
    ]


def scheduled(session: ZkSession, deadline: float, now: float | None = None) -> dict[str, int]:
    """How many jobs wait in the due-time index, and how many of them are due already (a
    backlog the leader has not promoted yet).  Walks ``scheduled/<era>/<tick>/<born>`` one
    level at a time, one pipelined round each, as :func:`queues` walks pending."""
    layout = session.settings.layout
    now_key = due_key(time.time() if now is None else now)
    with zk_errors():
        reader = Reader(session, deadline)
        paths = [layout.scheduled]
        for _ in range(3):  # eras, ticks, leaves
            found = reader.children(paths)
            paths = [f"{path}/{name}" for path in paths for name in found[path]]
        leaves = reader.children(paths)
    names = [name for listed in leaves.values() for name in listed]
    due = sum(1 for name in names if parse_scheduled_name(name)[0] <= now_key)
    return {"scheduled": len(names), "due": due}


__all__ = ["LiveWorker", "QueueStats", "Reader", "queues", "scheduled", "workers"]

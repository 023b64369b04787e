"""Read-only counts of a running cluster: live workers and the depth of each queue.

For operators' views (the frontend's ``/v1/workers`` and ``/v1/queues``), not for the hot
path: nothing here sets a watch, and nothing is cached.  Every read has a deadline, because
a caller answering an HTTP request must not wait out a ZooKeeper outage.

kazoo's synchronous calls queue a request while the client is disconnected and wait for
the reconnection with no time limit, so these functions issue asynchronous reads and wait
on each reply with the time left (which also pipelines the many small listings a queue
spans: one round trip per tree level, not one per shard).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.exceptions import NoNodeError

from zkq.coordinator.errors import Timeout
from zkq.coordinator.ids import id_time
from zkq.coordinator.paths import parse_pending_name
from zkq.coordinator.zk import ZkSession, zk_errors


@dataclass(frozen=True)
class QueueStats:
    """One job type's queue, as ZooKeeper holds it now."""

    type: str
    depth: int  # pending entries
    oldest_age: float | None  # seconds since the oldest pending job was created
    running: int  # jobs whose worker holds the claim
    paused: bool


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker's registration, with the jobs in its inbox."""

    id: str
    registration: dict[str, Any]
    inbox: list[str]
    session: str


class Reader:
    """Pipelined reads under one deadline (a ``time.monotonic()`` value)."""

    def __init__(self, session: ZkSession, deadline: float) -> None:
        self.client = session.client
        self.deadline = deadline
        self._timeout_exc = self.client.handler.timeout_exception

    def _wait(self, async_result: Any) -> Any:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout("ZooKeeper did not answer before the deadline; retry later")
        try:
            return async_result.get(timeout=remaining)
        except self._timeout_exc as exc:
            raise Timeout("ZooKeeper did not answer before the deadline; retry later") from exc

    def children(self, paths: Sequence[str]) -> dict[str, list[str]]:
        """Children of each path; a path that does not exist has none."""
        requests = [(p, self.client.get_children_async(p)) for p in paths]
        out: dict[str, list[str]] = {}
        for path, request in requests:
            try:
                out[path] = list(self._wait(request))
            except NoNodeError:
                out[path] = []
        return out

    def data(self, paths: Sequence[str]) -> dict[str, tuple[bytes, Any]]:
        """(data, stat) of each path that exists."""
        requests = [(p, self.client.get_async(p)) for p in paths]
        out: dict[str, tuple[bytes, Any]] = {}
        for path, request in requests:
            try:
                out[path] = self._wait(request)
            except NoNodeError:
                continue
        return out


def workers(session: ZkSession, deadline: float) -> list[WorkerInfo]:
    """Every registered worker, by id."""
    layout = session.settings.layout
    with zk_errors():
        reader = Reader(session, deadline)
        ids = sorted(reader.children([layout.workers])[layout.workers])
        found = reader.data([layout.worker(w) for w in ids])
        inboxes = reader.children([layout.inbox(w) for w in ids])
    out: list[WorkerInfo] = []
    for worker_id in ids:
        entry = found.get(layout.worker(worker_id))
        if entry is None:
            continue  # it went away between the two reads
        raw, stat = entry
        try:
            registration = json.loads(raw)
        except ValueError:
            registration = {}
        out.append(
            WorkerInfo(
                id=worker_id,
                registration=registration if isinstance(registration, dict) else {},
                inbox=sorted(inboxes.get(layout.inbox(worker_id), [])),
                session=f"0x{stat.ephemeralOwner:x}",
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


__all__ = ["QueueStats", "Reader", "WorkerInfo", "queues", "workers"]

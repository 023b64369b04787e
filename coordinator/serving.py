"""Which job types the live workers serve, and what zkq says when jobs wait for a type
nobody serves.

A job of a type no live worker serves is accepted all the same (a worker for it may start
later), but it would wait in silence.  So every place a person looks says so: the
submission (a warning from the frontend, or from ``zkq submit``), ``zkq status`` (a problem
once such jobs have waited longer than ``unserved_after``), the leader's log
(:class:`UnservedNotice`) and the timeout of ``zkq submit --wait`` (:func:`why_waiting`).

Two readings of "serves", on purpose.  A submission counts every registered worker,
draining or not: a frontend reads each registration once, when the worker appears
(:mod:`zkq.frontend.served`), and a drain is a short, deliberate state.  Whoever explains a
wait (status, the leader, ``--wait``) counts only the workers that still take jobs: a
draining worker will never take this one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from zkq.coordinator import census
from zkq.coordinator.job import Job, JobState
from zkq.coordinator.registration import WorkerInfo
from zkq.coordinator.zk import ZkSession, zk_errors

log = logging.getLogger(__name__)

#: seconds between two of the leader's log lines about the same unserved type
NOTICE_EVERY = 60.0


def unserved_warning(job_type: str) -> str:
    """What a submission of a type no live worker serves is told."""
    return f"no live worker serves type {job_type!r}: the job waits until one does"


def served_types(registrations: Iterable[WorkerInfo], taking: bool = False) -> frozenset[str]:
    """The types these workers serve; ``taking``: only those still taking jobs (not
    draining)."""
    out: set[str] = set()
    for info in registrations:
        if not (taking and info.draining):
            out.update(info.types)
    return frozenset(out)


def unserved(session: ZkSession, types: Iterable[str], deadline: float) -> list[str]:
    """Which of ``types`` no registered worker serves (one pipelined read of the
    registrations: for a command, not for a request path)."""
    live = served_types(w.registration for w in census.workers(session, deadline))
    return sorted(set(types) - live)


def unserved_queues(
    queues: Sequence[Mapping[str, Any]], workers: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The queues of ``zkq status`` (``census.queues``, as dicts) with pending jobs that no
    worker taking jobs serves; a paused type is left out (its jobs wait on purpose)."""
    served = {t for w in workers if not w.get("draining") for t in w.get("types", ())}
    return [
        {"type": q["type"], "depth": q["depth"], "oldest_age": q["oldest_age"]}
        for q in queues
        if q["depth"] and not q["paused"] and q["type"] not in served
    ]


def unserved_problems(unserved_list: Sequence[Mapping[str, Any]], after: float) -> list[str]:
    """A problem of ``zkq status`` per type whose jobs have waited at least ``after``
    seconds with nobody to run them (``unserved_after`` of
    :class:`~zkq.coordinator.config.ClusterConfig`, 60 by default)."""
    out = []
    for q in unserved_list:
        waited = q["oldest_age"] or 0.0
        if waited >= after:
            out.append(
                f"{q['depth']} job(s) of type {q['type']!r} pending for {waited:.0f}s and no "
                f"live worker serves the type: start a worker whose app handles it, or "
                f"cancel them (zkq cancel --type {q['type']} --state pending)"
            )
    return out


def why_waiting(session: ZkSession, job: Job, deadline: float) -> str:
    """Why ``job`` has not ended yet, for a person whose wait ran out: each cause that holds
    now (a paused type, no worker serving it, every slot taken, no leader), else where the
    job is."""
    layout = session.settings.layout
    if job.state in (JobState.ASSIGNED, JobState.RUNNING):
        where = "running on" if job.state == JobState.RUNNING else "assigned to"
        return f"it is {where} worker {job.worker} (an attempt may take {job.timeout:g}s)"
    if job.state != JobState.PENDING:
        return f"it is {job.state}"
    with zk_errors():
        found = session.get_children_many([layout.paused, layout.election], deadline=deadline)
        live = census.workers(session, deadline)
    causes = []
    if job.type in (found[layout.paused] or []):
        causes.append(f"type {job.type!r} is paused (zkq resume {job.type})")
    serving = [w for w in live if job.type in w.registration.types]
    taking = [w for w in serving if not w.registration.draining]
    if not serving:
        causes.append(
            f"no live worker serves type {job.type!r}: start a worker whose app handles it"
        )
    elif not taking:
        causes.append(f"every worker serving type {job.type!r} is draining")
    else:
        slots = sum(w.registration.slots for w in taking)
        busy = sum(min(len(w.inbox), w.registration.slots) for w in taking)
        if busy >= slots:
            causes.append(
                f"all {slots} slot(s) of the workers serving type {job.type!r} are busy: "
                "it runs when one is free"
            )
    if not found[layout.election]:
        causes.append("no coordinator is running: nothing is being assigned")
    if not causes:
        return "it is still pending; workers serving its type have free slots"
    return "; ".join(causes)


class UnservedNotice:
    """The leader's log of types whose pending jobs no live worker takes: a line when it
    first sees them, again every :data:`NOTICE_EVERY` seconds while it lasts (not every
    round), and a line when a worker for the type appears."""

    def __init__(
        self, every: float = NOTICE_EVERY, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self.timer = timer
        self._noted: dict[str, float] = {}  # type -> when last logged

    def check(self, depths: Mapping[str, int], served: frozenset[str], paused: set[str]) -> None:
        """``depths``: pending jobs per type; ``served``: the types of the workers taking
        jobs; ``paused``: the paused types (their jobs wait on purpose: not reported)."""
        now = self.timer()
        waiting = {t: n for t, n in depths.items() if n > 0 and t not in paused}
        for job_type in sorted(set(self._noted) - set(waiting) - served):
            del self._noted[job_type]  # nothing of it waits any more (cancelled, paused)
        for job_type in sorted(set(self._noted) & served):
            del self._noted[job_type]
            log.info(
                "a live worker now serves type %r: its pending jobs can run",
                job_type,
                extra={"type": job_type},
            )
        for job_type, depth in sorted(waiting.items()):
            if job_type in served:
                continue
            last = self._noted.get(job_type)
            if last is None or now - last >= self.every:
                self._noted[job_type] = now
                log.warning(
                    "%d pending job(s) of type %r and no live worker serves it: they wait "
                    "until one does",
                    depth,
                    job_type,
                    extra={"type": job_type},
                )


__all__ = [
    "NOTICE_EVERY",
    "UnservedNotice",
    "served_types",
    "unserved",
    "unserved_problems",
    "unserved_queues",
    "unserved_warning",
    "why_waiting",
]

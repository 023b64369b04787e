"""Which types the leader may still assign to a worker: reserved slots and type limits.

I/O-free; the assigner (:mod:`zkq.coordinator.assignment`) asks it once per pick and tells
it each pick it made.  Three caps bound what a worker *holds* of a type (queued plus
running in its inbox, as the leader tracks attempts from their assignment):

- **the reserve rule**: a type not known to be short holds at most
  ``slots - lost_slots - reserve`` of a worker's assignments, so ``reserve`` slots stay
  free for work that frees them quickly.  A type is short when a live worker serving it
  declares it so (``@zkq.handler(..., lane="short")``); an undeclared type is capped, so
  the first wave of a new long type cannot fill the reserve;
- the operator's ``per_worker`` limit (``limits/<type>``) and the handler's declared
  ``concurrency`` (``type_limits`` in the registration);
- and across the cluster the operator's ``cluster`` limit, counted over every assigned
  and running attempt of the type.

A worker whose registration predates these fields has reserve 0 and declares nothing:
nothing changes for it.  A capped job stays pending; once an attempt of its type ends (the
inbox is listed again) the next round may pick it.  Nothing polls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from zkq.coordinator.limits import TypeLimit
from zkq.coordinator.roster import WorkerView

SHORT = "short"
LONG = "long"
LANES = (SHORT, LONG)


def default_reserve(slots: int) -> int:
    """A quarter of the slots, at least one when there are two or more."""
    return 0 if slots < 2 else max(1, slots // 4)


class Admission:
    """One round's view: what each worker holds per type, the cluster's totals."""

    def __init__(self) -> None:
        self.limits: Mapping[str, TypeLimit] = {}
        self._held: dict[str, dict[str, int]] = {}  # worker -> type -> held
        self._cluster: dict[str, int] = {}  # type -> held across the cluster
        self._short: frozenset[str] = frozenset()

    def begin(
        self,
        workers: Iterable[WorkerView],
        held: Mapping[str, Mapping[str, int]],
        limits: Mapping[str, TypeLimit],
    ) -> None:
        """Start a round.  ``held``: worker id -> type -> assigned or running attempts
        (:meth:`AttemptClock.held_by_worker`); ``limits``: the operators' limits."""
        self.limits = limits
        self._held = {w: dict(types) for w, types in held.items()}
        self._cluster = {}
        for types in held.values():
            for job_type, count in types.items():
                self._cluster[job_type] = self._cluster.get(job_type, 0) + count
        self._short = frozenset(
            job_type
            for view in workers
            for job_type, lane in view.lanes.items()
            if lane == SHORT and job_type in view.types
        )

    def is_short(self, job_type: str) -> bool:
        return job_type in self._short

    def lane(self, view: WorkerView, job_type: str) -> str | None:
        """The lane a job of ``job_type`` is assigned to ``view`` under, for the record;
        None for a worker that takes part in no reserve and declares nothing (an older
        one: its jobs are written exactly as before)."""
        if view.reserve <= 0 and not view.lanes:
            return None
        return SHORT if self.is_short(job_type) else LONG

    def cap(self, view: WorkerView, job_type: str) -> int | None:
        """The most ``view`` may hold of ``job_type`` (None: no cap but its room)."""
        caps: list[int] = []
        limit = self.limits.get(job_type)
        if limit is not None and limit.per_worker is not None:
            caps.append(limit.per_worker)
        declared = view.type_limits.get(job_type)
        if declared is not None:
            caps.append(declared)
        if view.reserve > 0 and not self.is_short(job_type):
            caps.append(max(0, view.slots - view.lost_slots - view.reserve))
        return min(caps) if caps else None

    def cluster_full(self, job_type: str) -> bool:
        limit = self.limits.get(job_type)
        return (
            limit is not None
            and limit.cluster is not None
            and self._cluster.get(job_type, 0) >= limit.cluster
        )

    def allowed(self, view: WorkerView) -> frozenset[str]:
        """The types ``view`` serves that it may take one more of now (paused types are
        the pending index's business).  O(types served)."""
        held = self._held.get(view.id, {})
        out = []
        for job_type in view.types:
            if self.cluster_full(job_type):
                continue
            cap = self.cap(view, job_type)
            if cap is not None and held.get(job_type, 0) >= cap:
                continue
            out.append(job_type)
        return frozenset(out)

    def took(self, view: WorkerView, job_type: str) -> None:
        """A pick of ``job_type`` for ``view`` was made: count it at once."""
        held = self._held.setdefault(view.id, {})
        held[job_type] = held.get(job_type, 0) + 1
        self._cluster[job_type] = self._cluster.get(job_type, 0) + 1

    def gave_back(self, view_id: str, job_type: str) -> None:
        """A pick was not assigned after all (its record had moved on)."""
        held = self._held.get(view_id, {})
        if held.get(job_type, 0) > 0:
            held[job_type] -= 1
        if self._cluster.get(job_type, 0) > 0:
            self._cluster[job_type] -= 1

    def capped(self, depths: Mapping[str, int], workers: Iterable[WorkerView]) -> dict[str, int]:
        """Pending jobs per type that no live worker may take now because of a cap or the
        reserve rule (though some worker serves the type and has room)."""
        views = [(v, self.allowed(v)) for v in workers if not v.draining and v.room() > 0]
        out: dict[str, int] = {}
        for job_type, depth in depths.items():
            serving = [allowed for v, allowed in views if job_type in v.types]
            if depth and serving and not any(job_type in allowed for allowed in serving):
                out[job_type] = depth
        return out


__all__ = ["LANES", "LONG", "SHORT", "Admission", "default_reserve"]

"""What the coordinator leader holds of the pending entries, in memory (no I/O here).

Per job type a heap of entry names (``<pri>-<job_id>``: highest priority, then oldest,
first), per pending tick the names its last listing showed, per era the ticks seen.  An
entry leaves the heap lazily: a name no longer held by its tick (assigned, or cancelled by
someone else) is skipped when it reaches the top.
"""

from __future__ import annotations

import heapq

from zkq.coordinator.ids import id_time
from zkq.coordinator.stats import QueueSnapshot


class PendingIndex:
    def __init__(self) -> None:
        self._heaps: dict[str, list[tuple[str, str]]] = {}  # type -> (name, tick path)
        self._ticks: dict[str, set[str]] = {}  # tick path -> names held
        self._tick_type: dict[str, str] = {}
        self._eras: dict[str, set[str]] = {}  # era path -> tick names seen
        #: entries whose record this leader cannot read: not offered again until a
        #: reconcile, and never deleted (a newer leader may understand them)
        self._aside: dict[str, str] = {}  # name -> tick path

    def clear(self) -> None:
        self._aside.clear()
        self._heaps.clear()
        self._ticks.clear()
        self._tick_type.clear()
        self._eras.clear()

    # -- what listings showed -------------------------------------------------------------
    def load_tick(self, job_type: str, path: str, names: list[str] | None) -> bool:
        """Take a tick's listing (``None``: the tick is gone).  True when it is empty."""
        held = self._ticks.setdefault(path, set())
        self._tick_type[path] = job_type
        if names is None:
            held.clear()
            return False
        listed = set(names)
        heap = self._heaps.setdefault(job_type, [])
        for name in listed - held - self._aside.keys():
            heapq.heappush(heap, (name, path))
        held.clear()
        held.update(listed)
        return not listed

    def add_entries(self, job_type: str, path: str, names: list[str]) -> None:
        """Entries the leader itself just wrote into a tick (promoted scheduled jobs): held
        now, without waiting for the tick's next listing."""
        held = self._ticks.setdefault(path, set())
        self._tick_type[path] = job_type
        heap = self._heaps.setdefault(job_type, [])
        for name in set(names) - held - self._aside.keys():
            heapq.heappush(heap, (name, path))
            held.add(name)

    def set_aside(self, name: str, path: str) -> None:
        """Offer this entry no more (until :meth:`clear`): its record cannot be read here.
        It still counts in its tick's depth, as the pending job it is."""
        self._aside[name] = path
        self._ticks.setdefault(path, set()).add(name)

    @property
    def set_aside_count(self) -> int:
        """Entries set aside that their tick still holds (one moved on by a newer leader
        is no longer counted)."""
        return sum(1 for name, path in self._aside.items() if name in self._ticks.get(path, ()))

    def knows_tick(self, path: str) -> bool:
        return path in self._ticks

    def forget_tick(self, path: str) -> None:
        """After the tick was deleted; its era stops counting it as seen."""
        self._ticks.pop(path, None)
        self._tick_type.pop(path, None)
        era_path, _, tick = path.rpartition("/")
        if era_path in self._eras:
            self._eras[era_path].discard(tick)

    def era_ticks(self, path: str) -> set[str]:
        """The ticks seen in an era (a live set, for the caller to update)."""
        return self._eras.setdefault(path, set())

    def forget_era(self, path: str) -> None:
        self._eras.pop(path, None)

    # -- choosing -----------------------------------------------------------------------------
    def _top(self, job_type: str) -> tuple[str, str] | None:
        heap = self._heaps.get(job_type)
        while heap:
            name, tick = heap[0]
            if name in self._ticks.get(tick, ()) and name not in self._aside:
                return heap[0]
            heapq.heappop(heap)  # stale: assigned or cancelled meanwhile
        return None

    def pop_best(self, types: frozenset[str], paused: set[str]) -> tuple[str, str, str] | None:
        """The best entry among ``types`` not paused, taken out: (type, name, tick path)."""
        best: tuple[str, str, str] | None = None
        for job_type in types - paused:
            top = self._top(job_type)
            if top is not None and (best is None or top[0] < best[1]):
                best = (job_type, top[0], top[1])
        if best is not None:
            heapq.heappop(self._heaps[best[0]])
            self._ticks[best[2]].discard(best[1])
        return best

    def has_work(self, paused: set[str]) -> bool:
        return any(self._heaps[t] for t in self._heaps if t not in paused)

    def holds_work(self, job_type: str) -> bool:
        """Something of this type is at hand (a cheap look at the top of its heap)."""
        heap = self._heaps.get(job_type)
        if not heap:
            return False
        return any(name in self._ticks.get(tick, ()) for name, tick in heap[:8])

    # -- what it adds up to -----------------------------------------------------------------
    def snapshot(self, running: dict[str, int], paused: set[str]) -> dict[str, QueueSnapshot]:
        """Depth and age of the oldest entry per type.  The age is that of the oldest
        non-empty tick (about a second's precision), at the cost of a pass over ticks
        rather than over every pending name."""
        depth: dict[str, int] = {}
        oldest: dict[str, str] = {}
        for path, held in self._ticks.items():
            if not held:
                continue
            job_type = self._tick_type.get(path, "")
            depth[job_type] = depth.get(job_type, 0) + len(held)
            era, tick = path.rsplit("/", 2)[-2:]
            if job_type not in oldest or era + tick < oldest[job_type]:
                oldest[job_type] = era + tick
        return {
            job_type: QueueSnapshot(
                depth=depth.get(job_type, 0),
                oldest_created=id_time(oldest[job_type].ljust(26, "0"))
                if job_type in oldest
                else None,
                running=running.get(job_type, 0),
                paused=job_type in paused,
            )
            for job_type in set(self._heaps) | set(running) | paused
        }

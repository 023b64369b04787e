"""Attempts a worker stopped while cut off from ZooKeeper, until it can give them back.

A worker suspended for longer than its session timeout stops its running attempts
(``session``, :mod:`zkq.worker.leases`): if the session ended, the leader has taken them
back and may have started them elsewhere.  But the session may have lived on (ZooKeeper
expires no session while the ensemble has no quorum, and the next leader restarts every
session's timer), and then the claims are still the worker's: no one else would take the
jobs back before their timeout.  So the pipeline keeps each such attempt here, and gives
its job back itself once connected again in the same session (the committer's
:meth:`~zkq.worker.pipeline.Pipeline._commit`).

Not before the handler has returned: while it still runs, the claim keeps a second copy
from starting elsewhere.  A handler that does not return within the pool's stop grace has
lost its slot and may never return; its job is given back then, as the leader's lease
take-back would do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

A = TypeVar("A")  # the pipeline's record of a started attempt


@dataclass
class _Stopped(Generic[A]):
    owner: A
    due: float  # monotonic: given back from then on, returned or not
    returned: bool = False


class CutOff(Generic[A]):
    """Only the committer calls it."""

    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._grace = grace
        self._clock = clock
        self._stopped: dict[str, _Stopped[A]] = {}  # job id -> its stopped attempt

    def __len__(self) -> int:
        return len(self._stopped)

    def add(self, job_id: str, owner: A) -> None:
        """``owner``'s handler was just told to stop."""
        self._stopped[job_id] = _Stopped(owner, self._clock() + self._grace)

    def returned(self, job_id: str, owner: A) -> None:
        """The handler of an attempt (perhaps one of these) returned."""
        stopped = self._stopped.get(job_id)
        if stopped is not None and stopped.owner is owner:
            stopped.returned = True

    def due(self, connected: bool) -> list[A]:
        """The attempts to settle now (none while disconnected); they leave the list."""
        if not connected or not self._stopped:
            return []
        now = self._clock()
        ready = [j for j, s in self._stopped.items() if s.returned or now >= s.due]
        return [self._stopped.pop(j).owner for j in ready]

    def put_back(self, job_id: str, owner: A) -> None:
        """Settling failed (not a refusal: a bug, or ZooKeeper gone again): try at the next
        event rather than in a loop."""
        self._stopped[job_id] = _Stopped(owner, self._clock(), returned=True)

    def next_wake(self) -> float | None:
        """Seconds until a handler that has not returned is given up on."""
        waiting = [s.due for s in self._stopped.values() if not s.returned]
        return max(0.01, min(waiting) - self._clock()) if waiting else None

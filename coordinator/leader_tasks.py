"""Work the leader does beside assignment, run by the dispatcher on its one thread: the
contract such a task keeps (:class:`LeaderTask`)."""

from __future__ import annotations

from typing import Protocol


class LeaderTask(Protocol):
    """Work the leader does each round beside assignment (promoting scheduled jobs, ticking
    periodic schedules), on the dispatcher's one thread.

    A task owns a subtree of znodes.  It marks the paths it wants (re)listed with
    :meth:`Dispatcher.mark`; the dispatcher lists every dirty path it :meth:`owns` with a
    child watch (in the round's one pipelined listing) and hands the names to
    :meth:`relist` (None: the node is gone).  A fired watch marks its path again.  Its
    writes go through the store with the leader's fence (``dispatcher.fence``)."""

    def owns(self, path: str) -> bool: ...

    def relist(self, path: str, names: list[str] | None) -> None: ...

    def on_reconcile(self) -> None:
        """After every (re)connection: forget what was remembered, mark the roots dirty."""
        ...

    def step(self, wall_now: float, mono_now: float) -> int:
        """Do what is due now (bounded per round); returns how much it did (0: nothing,
        the loop may sleep)."""
        ...

    def next_at(self, wall_now: float, mono_now: float) -> float | None:
        """Seconds from now until the task next has something due (None: nothing known)."""
        ...

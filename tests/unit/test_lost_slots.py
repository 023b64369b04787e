"""Lost slots as the leader and the operator see them."""

from __future__ import annotations

from zkq.coordinator.roster import WorkerView
from zkq.output import workers_table


def test_the_leader_assigns_around_lost_slots() -> None:
    view = WorkerView("w1", frozenset({"t"}), slots=4, prefetch=2, inbox={"a"}, lost_slots=2)
    assert view.idle() == 1  # 4 slots - 2 lost - 1 held
    assert view.room() == 3  # and the prefetch on top
    view.lost_slots = 4
    assert (view.idle(), view.room()) == (0, 1)


def test_workers_show_their_lost_slots() -> None:
    shown = workers_table(
        [
            {"id": "w1", "slots": 8, "busy": 3, "lost_slots": 2, "types": ["t"]},
            {"id": "w2", "slots": 8, "busy": 0, "types": ["t"]},
        ]
    )
    assert "8 (2 lost)" in shown.splitlines()[1]
    assert "lost" not in shown.splitlines()[2]

"""A worker's registration, written in one place and read in one place."""

from __future__ import annotations

import dataclasses
import json

import pytest

from zkq.coordinator.registration import BadRegistration, WorkerInfo


def info(**changes: object) -> WorkerInfo:
    base: dict[str, object] = {
        "id": "host-12-abcdef",
        "types": frozenset({"resize", "echo"}),
        "slots": 4,
        "prefetch": 2,
        "pool": "process",
        "host": "host",
        "pid": 12,
        "started_at": 1700000000.5,
    }
    base.update(changes)
    return WorkerInfo(**base)  # type: ignore[arg-type]


def test_a_registration_round_trips_as_the_json_workers_always_wrote() -> None:
    written = info()
    data = json.loads(written.to_bytes())
    assert data == {
        "id": "host-12-abcdef",
        "host": "host",
        "pid": 12,
        "types": ["echo", "resize"],
        "slots": 4,
        "prefetch": 2,
        "pool": "process",
        "started_at": 1700000000.5,
        "draining": False,
    }
    assert WorkerInfo.from_bytes("host-12-abcdef", written.to_bytes()) == written


def test_the_node_name_is_the_id_and_missing_optional_fields_default() -> None:
    read = WorkerInfo.from_bytes("w9", b'{"types": ["t"], "slots": "3", "prefetch": -1}')
    assert (read.id, read.types, read.slots, read.prefetch, read.draining) == (
        "w9",
        frozenset({"t"}),
        3,
        0,
        False,
    )


def test_a_drain_keeps_fields_a_newer_zkq_added() -> None:
    raw = json.dumps({**info().to_dict(), "zone": "eu-1"}).encode()
    drained = WorkerInfo.from_bytes("host-12-abcdef", raw).drained()
    data = json.loads(drained.to_bytes())
    assert data["draining"] is True and data["zone"] == "eu-1"


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"slots": 1}', b'{"types": "echo", "slots": 1}', b'{"types": []}'],
)
def test_an_unreadable_registration_is_refused(raw: bytes) -> None:
    with pytest.raises(BadRegistration, match="w1"):
        WorkerInfo.from_bytes("w1", raw)


def test_what_is_shown_of_an_unreadable_registration_serves_nothing() -> None:
    shown = WorkerInfo.unreadable("w1")
    assert shown.id == "w1" and not shown.types and shown.slots == 0


def test_lost_slots_and_graces_are_written_only_when_set_and_read_back() -> None:
    assert "lost_slots" not in info().to_dict()
    losing = dataclasses.replace(info(), cancel_grace=5.0, kill_grace=2.5).losing(2)
    data = losing.to_dict()
    assert (data["lost_slots"], data["cancel_grace"], data["kill_grace"]) == (2, 5.0, 2.5)
    assert WorkerInfo.from_bytes("host-12-abcdef", losing.to_bytes()) == losing

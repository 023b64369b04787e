"""Periodic schedules: fire times across DST, records, derived tick ids."""

from __future__ import annotations

from datetime import datetime

import pytest

from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.ids import derived_job_id, id_time, validate_job_id
from zkq.coordinator.schedules import ScheduleRecord, ScheduleState

DAILY = "30 2 * * *"
QUARTER = "*/15 * * * *"


def record(cron: str | None = None, tz: str = "UTC", **more: object) -> ScheduleRecord:
    return ScheduleRecord(
        name="s", owner="_", template={"type": "t"}, cron=cron, timezone=tz, **more
    )


def ticks(schedule: ScheduleRecord, start: str, count: int) -> list[str]:
    at = datetime.fromisoformat(start).timestamp()
    out = []
    for _ in range(count):
        nxt = schedule.next_after(at)
        assert nxt > at  # last_tick_at only moves forward: every tick is written (M3)
        at = nxt
        out.append(schedule.key(at))
    return out


# (cron, zone, start, the ticks that follow)
FIRE_TIMES = [
    # spring forward: 02:30 does not exist, it runs once at the first instant after the gap
    (
        DAILY,
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
    ),
    (
        DAILY,
        "America/New_York",
        "2026-03-07T12:00:00-05:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    # fall back: an ambiguous wall time runs once, at its first occurrence
    (
        DAILY,
        "Europe/Berlin",
        "2026-10-24T12:00:00+02:00",
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00-04:00",
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    ),
    # "*" in the hour field follows elapsed time: the repeated hour fires twice...
    (
        QUARTER,
        "Europe/Berlin",
        "2026-10-25T02:40:00+02:00",
        [
            "2026-10-25T02:45:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:15:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T02:45:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
    ),
    (
        QUARTER,
        "America/New_York",
        "2026-11-01T01:40:00-04:00",
        [
            "2026-11-01T01:45:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:15:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T01:45:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    ),
    # ...and the skipped hour not at all, with no gap in real time
    (
        QUARTER,
        "Europe/Berlin",
        "2026-03-29T01:40:00+01:00",
        ["2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"],
    ),
    (
        QUARTER,
        "America/New_York",
        "2026-03-08T01:40:00-05:00",
        ["2026-03-08T01:45:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:15:00-04:00"],
    ),
    # sub-hourly but hour-bound: the gap's four fire times run once, after the gap
    (
        "*/15 2 * * *",
        "Europe/Berlin",
        "2026-03-29T01:50:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
    ),
]


@pytest.mark.parametrize(("cron", "tz", "start", "expected"), FIRE_TIMES)
def test_fire_times(cron: str, tz: str, start: str, expected: list[str]) -> None:
    assert ticks(record(cron, tz), start, len(expected)) == expected


@pytest.mark.parametrize(("cron", "tz", "start", "expected"), FIRE_TIMES)
def test_the_latest_tick_is_the_one_before_the_next(
    cron: str, tz: str, start: str, expected: list[str]
) -> None:
    schedule = record(cron, tz)
    at = datetime.fromisoformat(start).timestamp()
    previous: float | None = None
    for key in expected:
        nxt = schedule.next_after(at)
        assert schedule.key(nxt) == key
        # at a tick the latest is that tick; just before it, the one before
        assert schedule.latest_at_or_before(nxt) == nxt
        if previous is not None:
            assert schedule.latest_at_or_before(nxt - 1) == previous
        previous = at = nxt


def test_every_is_anchored_in_utc() -> None:
    schedule = ScheduleRecord(
        name="e", owner="_", template={"type": "t"}, every=30, created_at=1_000_015.0
    )
    assert schedule.next_after(1_000_015.0) == 1_000_020.0
    assert schedule.latest_at_or_before(1_000_109.0) == 1_000_080.0
    assert schedule.missed_between(1_000_020.0, 1_000_110.0) == 3
    assert schedule.grace == 15.0


def test_missed_ticks_are_counted_up_to_a_cap() -> None:
    schedule = record("* * * * *")
    start = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()
    assert schedule.missed_between(start, start + 600) == 10
    assert schedule.missed_between(start, start + 86400 * 30) == 1000


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name": "Bad Name"}, "schedule name"),
        ({"cron": "61 * * * *"}, "cron expression"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"cron": None}, "exactly one of cron and every"),
        ({"cron": None, "every": 0.5}, "at least 1 second"),
        ({"misfire": "later"}, "misfire"),
        ({"template": {"payload": 1}}, "job type"),
        ({"cron": "@daily"}, "five fields"),
        ({"cron": "* * * * * *"}, "five fields"),
        ({"cron": "0 0 31 2 *"}, "never fires"),
        ({"timezone": "Europe"}, "time zone"),
        ({"cron": None, "every": 1e12}, "at most"),
        ({"cron": None, "every": 5, "anchor": 1e300}, "before 2100"),
    ],
)
def test_bad_definitions_are_refused(changes: dict[str, object], says: str) -> None:
    fields: dict[str, object] = {"name": "ok", "owner": "_", "template": {"type": "t"}}
    fields["cron"] = DAILY
    fields.update(changes)
    with pytest.raises(InvalidInput, match=says):
        ScheduleRecord(**fields)  # type: ignore[arg-type]


def test_a_record_round_trips_and_keeps_unknown_fields() -> None:
    schedule = record(DAILY, "Europe/Berlin", extra={"future": 1})
    again = ScheduleRecord.from_bytes(schedule.to_bytes())
    assert again == schedule and again.extra == {"future": 1}
    assert again.definition_hash == schedule.replace(paused=True).definition_hash
    assert again.definition_hash != schedule.replace(cron="0 3 * * *").definition_hash
    state = ScheduleState(last_tick="k", last_tick_at=1.0, last_job=None, skipped=2)
    assert ScheduleState.from_bytes(state.to_bytes()) == state


def test_a_tick_id_is_derived_from_its_tick() -> None:
    at = datetime.fromisoformat("2026-10-25T02:30:00+02:00").timestamp()
    one = derived_job_id(at, "acme\0s\0key")
    assert validate_job_id(one) == one
    assert one == derived_job_id(at, "acme\0s\0key")
    assert one != derived_job_id(at, "acme\0s\0other")
    assert id_time(one) == at

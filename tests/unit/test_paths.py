from zkq.coordinator.ids import id_for_time, id_time, new_job_id
from zkq.coordinator.paths import (
    ERA_CHARS,
    Layout,
    bucket_of,
    parse_pending_name,
    pending_name,
)


def test_pending_names_sort_by_priority_then_time() -> None:
    early, late = new_job_id(), new_job_id()
    names = [
        pending_name(0, early),
        pending_name(5, late),
        pending_name(5, early),
        pending_name(999, late),
    ]
    assert sorted(names) == [
        pending_name(999, late),
        pending_name(5, early),
        pending_name(5, late),
        pending_name(0, early),
    ]
    assert parse_pending_name(pending_name(7, early)) == (7, early)


def test_buckets_are_time_prefixes() -> None:
    jid = new_job_id()
    era, tick = bucket_of(jid)
    assert jid.startswith(era + tick) and len(era) == 6 and len(tick) == 2
    # one tick is about a second: ids a second apart fall into neighbouring ticks
    a, b = id_for_time(1_700_000_000.0), id_for_time(1_700_000_001.1)
    assert bucket_of(a) != bucket_of(b) and bucket_of(a)[0] == bucket_of(b)[0]


def start_of(era: str) -> float:
    """When an era begins: the time of the smallest id under it."""
    return id_time(era + "0" * (26 - ERA_CHARS))


def test_listing_sizes_stay_far_below_jute_maxbuffer() -> None:
    # The bounds come from the product's own bucketing, so a change to ERA_CHARS/TICK_CHARS
    # or to the id encoding that widens a listing fails here.
    era_start = start_of(bucket_of(id_for_time(1_700_000_000.0))[0])
    # every tick of one era: one id per 1,024 ms across the era's span, plus its last ms
    span_ms = 2**20
    ticks_in_era = {
        bucket_of(id_for_time(era_start + ms / 1000))
        for ms in [*range(0, span_ms, 2**10), span_ms - 1]
    }
    assert len({era for era, _ in ticks_in_era}) == 1, "one era spans 2**20 ms"
    assert len(ticks_in_era) == 1024
    assert (
        bucket_of(id_for_time(era_start + span_ms / 1000))[0]
        != bucket_of(id_for_time(era_start))[0]
    )
    # a year of eras in one listing (names of ERA_CHARS characters + 4 bytes of framing)
    year = 365 * 24 * 3600
    first_era = bucket_of(id_for_time(1_700_000_000.0))[0]
    last_era = bucket_of(id_for_time(1_700_000_000.0 + year))[0]
    eras_per_year = round((start_of(last_era) - start_of(first_era)) * 1000 / span_ms)
    assert eras_per_year == year * 1000 // span_ms
    assert eras_per_year * (len(first_era) + 4) < 512 * 1024


def test_layout_spells_every_path_under_its_root() -> None:
    layout = Layout("/custom")
    jid = new_job_id()
    era, tick = bucket_of(jid)
    assert layout.job(jid) == f"/custom/jobs/{era}/{tick}/{jid}"
    assert (
        layout.pending_entry("resize", 3, jid) == f"/custom/pending/resize/{era}/{tick}/996-{jid}"
    )
    assert layout.claim(jid) == f"/custom/claims/{jid}"
    assert layout.inbox_entry("w1", jid) == f"/custom/inbox/w1/{jid}"
    assert all(p.startswith("/custom/") for p in layout.fixed_parents())


def test_layout_rejects_a_relative_root() -> None:
    import pytest

    with pytest.raises(ValueError):
        Layout("zkq")

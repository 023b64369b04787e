from zkq.coordinator.ids import id_for_time, new_job_id
from zkq.coordinator.paths import Layout, bucket_of, parse_pending_name, pending_name


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


def test_listing_sizes_stay_far_below_jute_maxbuffer() -> None:
    # era: 2 base32 characters of tick -> at most 1,024 children
    assert 32**2 == 1024
    # a year of eras (17.5 minutes each) in one listing: names of 6 chars + 4 bytes framing
    eras_per_year = 365 * 24 * 3600 * 1000 // 2**20
    assert eras_per_year * (6 + 4) < 512 * 1024


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

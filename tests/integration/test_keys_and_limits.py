"""API keys and the shared rate limiter against a real MariaDB."""

from __future__ import annotations

import hashlib

import pytest

from tests.mysql_support import pool_of, query, selects
from zkq.coordinator.errors import ApiKeyNotFound, InvalidInput
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.mariadb import MariaDBServer
from zkq.frontend.keys import KeyStore
from zkq.frontend.ratelimit import RateLimiter

pytestmark = pytest.mark.integration

#: a window start (a multiple of 60), far from the wall clock so no real hit interferes
T0 = 1_800_000_000.0


# -- keys -----------------------------------------------------------------------------------
def test_a_created_key_authenticates_and_only_its_hash_is_stored(
    mariadb: MariaDBServer, database: MySQLSettings, pool: ConnectionPool
) -> None:
    keys = KeyStore(pool)
    key_id, secret = keys.create("acme", "submit,read", name="ci", rate_limit=120)
    assert secret.startswith("zkq_") and len(secret) == 47

    key = keys.authenticate(secret)
    assert key is not None and key.id == key_id
    assert (key.tenant, key.scopes, key.rate_limit_per_minute) == (
        "acme",
        frozenset({"submit", "read"}),
        120,
    )
    assert key.allows("submit") and not key.allows("admin")
    assert key.display_prefix == secret[:12] + "…"

    (row,) = query(mariadb, database.database, "SELECT * FROM api_keys")
    assert hashlib.sha256(secret.encode()).hexdigest() in row
    assert not any(secret in str(value) for value in row)
    assert not any(secret[4:] in str(value) for value in row)


def test_wrong_malformed_and_revoked_secrets_do_not_authenticate(pool: ConnectionPool) -> None:
    keys = KeyStore(pool)
    key_id, secret = keys.create("acme", ["read"])
    other_frontend = KeyStore(pool, cache_seconds=0)
    assert other_frontend.authenticate(secret) is not None

    # same prefix (the looked-up part), different rest: the hash comparison refuses it
    forged = secret[:12] + ("A" if secret[12] != "A" else "B") + secret[13:]
    assert keys.authenticate(forged) is None
    assert keys.authenticate("zkq_short") is None
    assert keys.authenticate("Bearer " + secret) is None

    revoked = keys.revoke(secret[4:12])  # by prefix, as an operator reads it
    assert revoked.id == key_id and revoked.revoked
    assert keys.authenticate(secret) is None  # the revoking frontend forgets it at once
    assert other_frontend.authenticate(secret) is None
    assert keys.revoke(key_id).revoked_at == revoked.revoked_at  # again: no change

    listed = {k.id: k for k in keys.list()}
    assert listed[key_id].revoked
    assert keys.list(include_revoked=False) == []


def test_a_wrong_key_tried_again_and_again_costs_one_query(
    mariadb: MariaDBServer, pool: ConnectionPool
) -> None:
    keys = KeyStore(pool)  # 5 s of memory for refusals, as the frontends have
    wrong = "zkq_" + "W" * 43
    before = selects(mariadb)
    assert all(keys.authenticate(wrong) is None for _ in range(50))
    assert selects(mariadb) - before <= 2  # one lookup (and root's SHOW is no SELECT)
    # a key made here after all works at once; elsewhere within negative_seconds
    _, secret = keys.create("acme", ["read"])
    assert keys.authenticate(secret) is not None


def test_key_mistakes_are_refused_clearly(pool: ConnectionPool) -> None:
    keys = KeyStore(pool)
    with pytest.raises(InvalidInput, match="scopes"):
        keys.create("acme", "submit,delete")
    with pytest.raises(InvalidInput, match="tenant"):
        keys.create("", "read")
    with pytest.raises(ApiKeyNotFound):
        keys.revoke(999)
    with pytest.raises(ApiKeyNotFound):
        keys.revoke("zkq_AAAAAAAA…")


def test_list_filters_by_tenant(pool: ConnectionPool) -> None:
    keys = KeyStore(pool)
    a1, _ = keys.create("a", "read")
    keys.create("b", "admin")
    a2, _ = keys.create("a", "submit")
    assert [k.id for k in keys.list(tenant="a")] == [a1, a2]
    assert [k.tenant for k in keys.list()] == ["a", "b", "a"]


# -- rate limits ----------------------------------------------------------------------------
class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_two_frontends_share_one_limit(database: MySQLSettings) -> None:
    clock = Clock(T0 + 30)
    with pool_of(database) as pool_a, pool_of(database) as pool_b:
        frontends = [RateLimiter(pool_a, clock=clock), RateLimiter(pool_b, clock=clock)]
        verdicts = [frontends[n % 2].hit(7, 10) for n in range(16)]

    assert [v.allowed for v in verdicts] == [True] * 10 + [False] * 6
    assert [v.remaining for v in verdicts[:10]] == list(range(9, -1, -1))
    # a slot frees once this window has slid far enough away: 30 s to its end, then 10%
    # into the next, where its 10 hits still weigh 9
    assert all(v.retry_after == 36 for v in verdicts[10:])


def test_refused_requests_do_not_count(database: MySQLSettings) -> None:
    clock = Clock(T0 + 10)
    with pool_of(database) as pool:
        limiter = RateLimiter(pool, clock=clock)
        for _ in range(25):
            limiter.hit(1, 5)
        rows = query_hits(pool, 1)
    assert rows == {T0: 5}


def test_the_previous_window_weighs_in_as_it_slides_away(database: MySQLSettings) -> None:
    clock = Clock(T0 + 59)
    with pool_of(database) as pool_a, pool_of(database) as pool_b:
        first, second = RateLimiter(pool_a, clock=clock), RateLimiter(pool_b, clock=clock)
        assert sum(first.hit(3, 10).allowed for _ in range(10)) == 10

        # a quarter into the next window, three quarters of those 10 hits still count
        clock.now = T0 + 60 + 15
        verdicts = [second.hit(3, 10) for _ in range(4)]
        assert [v.allowed for v in verdicts] == [True, True, False, False]
        # 2 hits now; one more fits once 10 * overlap <= 7, i.e. at 30% into the window
        assert verdicts[-1].retry_after == 3

        clock.now = T0 + 60 + 19
        assert first.hit(3, 10).allowed
        assert not first.hit(3, 10).allowed


def test_default_limit_applies_when_the_key_has_none(database: MySQLSettings) -> None:
    with pool_of(database) as pool:
        limiter = RateLimiter(pool, default_limit=3, clock=Clock(T0 + 1))
        assert [limiter.hit(9).allowed for _ in range(4)] == [True, True, True, False]


def test_old_windows_are_purged(database: MySQLSettings) -> None:
    clock = Clock(T0 + 5)
    with pool_of(database) as pool:
        limiter = RateLimiter(pool, clock=clock)
        for minute in range(5):
            clock.now = T0 + 60 * minute + 5
            limiter.hit(4, 10)
        # hits purge by the way, once a window: the current window and two before it stay
        assert sorted(query_hits(pool, 4)) == [T0 + 120, T0 + 180, T0 + 240]

        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO rate_limit_counters VALUES (5, %s, 1), (5, %s, 1)",
                (T0 - 600, T0 - 540),
            )
        assert limiter.purge() == 2
        assert query_hits(pool, 5) == {}


def query_hits(pool: ConnectionPool, key_id: int) -> dict[float, int]:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT window_start, hits FROM rate_limit_counters WHERE key_id = %s", (key_id,)
        )
        return {float(w): int(h) for w, h in cur.fetchall()}

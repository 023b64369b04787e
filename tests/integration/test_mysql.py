"""The MySQL boundary against a real MariaDB: migrations, connections, failing fast."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mysql_support import fresh_database, own_mariadb, pool_of, query, scalar
from zkq.coordinator.errors import DatabaseError, DatabaseUnavailable
from zkq.coordinator.migrate import available, migrate, status
from zkq.coordinator.mysql import MySQLSettings, connect
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.ports import free_port

pytestmark = pytest.mark.integration

TABLES = {
    "api_keys",
    "rate_limit_counters",
    "request_log",
    "job_archive",
    "schema_migrations",
}


def _select_one(settings: MySQLSettings) -> int:
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            return int(scalar(cur))
    finally:
        conn.close()


#: the migrations shipped at this writing; later ones only add to the list
SHIPPED = [
    "0001_api_keys",
    "0002_rate_limit_counters",
    "0003_request_log",
    "0004_job_archive",
    "0005_idempotency_keys",
    "0006_cluster_secrets",
    "0007_tenant_job_types",
    "0008_job_quarantine",
]


def shipped() -> list[str]:
    """The labels of the migrations found on disk, checked to include the ones we know: a
    test of "each applied once" proves nothing over an empty list."""
    labels = [m.label for m in available()]
    assert labels[: len(SHIPPED)] == SHIPPED, labels
    return labels


def test_migrations_apply_once_then_find_nothing_to_do(mariadb: MariaDBServer) -> None:
    settings = fresh_database(mariadb, migrated=False)
    pending = status(settings)
    assert [s.migration.label for s in pending] == shipped()
    assert all(s.applied_at is None for s in pending)

    first = migrate(settings)
    assert [m.label for m in first] == [m.label for m in available()]
    assert [m.version for m in first] == sorted(m.version for m in first)
    assert migrate(settings) == []  # the second run changes nothing

    tables = {row[0] for row in query(mariadb, settings.database, "SHOW TABLES")}
    assert tables >= TABLES
    recorded = query(mariadb, settings.database, "SELECT version FROM schema_migrations")
    assert sorted(v for (v,) in recorded) == [m.version for m in available()]
    applied = status(settings)
    assert [s.migration.label for s in applied] == shipped()
    assert all(s.applied_at is not None for s in applied)


def test_two_processes_migrating_at_once_apply_each_migration_once(
    mariadb: MariaDBServer,
) -> None:
    settings = fresh_database(mariadb, migrated=False)
    argv = [sys.executable, "-m", "zkq", "db", "migrate", "--json", "--mysql", settings.url]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [json.loads(run.communicate(timeout=120)[0]) for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    applied = [label for out in outputs for label in out["applied"]]
    # the lock serialises them: one applied everything, the other found it done
    assert sorted(applied) == shipped()
    assert sorted(len(out["applied"]) for out in outputs) == [0, len(available())]


def test_an_edited_migration_is_refused(mariadb: MariaDBServer) -> None:
    settings = fresh_database(mariadb)
    conn = connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE schema_migrations SET checksum = %s WHERE version = 1", ("0" * 64,))
    finally:
        conn.close()
    with pytest.raises(DatabaseError, match="changed after it was applied"):
        migrate(settings)


def test_a_missing_schema_says_to_migrate(mariadb: MariaDBServer) -> None:
    settings = fresh_database(mariadb, migrated=False)
    with (
        pool_of(settings) as pool,
        pytest.raises(DatabaseError, match="zkq db migrate"),
        pool.connection() as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT * FROM api_keys")


def test_sessions_are_utc_utf8mb4_and_autocommit(mariadb: MariaDBServer) -> None:
    settings = fresh_database(mariadb)
    with pool_of(settings) as pool, pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT @@session.time_zone, @@character_set_connection, @@autocommit")
        assert cur.fetchone() == ("+00:00", "utf8mb4", 1)


def test_nothing_listening_fails_within_a_second() -> None:
    settings = MySQLSettings(port=free_port(), password="x")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="retry later"):
        connect(settings)
    # refused at once, or at worst after connect_timeout: a generous multiple of it
    assert time.monotonic() - started < settings.connect_timeout * 5


def test_wrong_password_is_unavailable_not_a_crash(mariadb: MariaDBServer) -> None:
    wrong = MySQLSettings(port=mariadb.port, user="zkq", password="wrong", database="zkq")
    with pytest.raises(DatabaseUnavailable, match="Access denied"):
        connect(wrong)


def test_pool_fails_fast_while_down_and_reconnects_after(tmp_path: Path) -> None:
    with own_mariadb(tmp_path / "mariadb") as own, pool_of(own.settings) as pool:
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            before = scalar(cur)

        own.stop()
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable), pool.connection() as conn:
            conn.cursor().execute("SELECT 1")
        with pytest.raises(DatabaseUnavailable), pool.connection() as conn:
            conn.cursor().execute("SELECT 1")  # a fresh connect, refused at once
        # neither waited for the server to come back: each ended within its timeouts
        # (connect, then read), here twice over and times a generous factor
        bound = 2 * (own.settings.connect_timeout + own.settings.read_timeout) * 2
        assert time.monotonic() - started < bound

        own.start()
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            assert scalar(cur) != before  # a new connection, made by the pool


def test_a_hung_server_times_out_instead_of_hanging(tmp_path: Path) -> None:
    with own_mariadb(tmp_path / "mariadb") as own:
        settings = dataclasses.replace(own.settings, read_timeout=1.0)
        with pool_of(settings) as pool:
            with pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")  # leaves one idle connection in the pool
            own.pause()  # the server keeps its sockets open but answers nothing
            try:
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailable), pool.connection() as conn:
                    conn.cursor().execute("SELECT 1")
                # a hung server would hold it for ever: it ends on read_timeout (1 s),
                # here times a generous factor
                assert time.monotonic() - started < settings.read_timeout * 5
            finally:
                own.resume()
            assert _select_one(settings) == 1

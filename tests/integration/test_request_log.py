"""The batched request log against a real MariaDB, also while it is down."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mysql_support import fresh_database, own_mariadb, pool_of, query, scalar
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.mysql import ConnectionPool
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.waiting import wait_until
from zkq.frontend.requestlog import RequestLog, RequestRecord

pytestmark = pytest.mark.integration


def _entry(n: int, **fields: Any) -> RequestRecord:
    entry = RequestRecord(time.time(), "GET", f"/v1/jobs/{n}", status=200, latency_ms=1.5)
    return dataclasses.replace(entry, **fields)


def _count(pool: ConnectionPool) -> int:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM request_log")
        return int(scalar(cur))


def _inserts(server: MariaDBServer) -> int:
    conn = server.root_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Com_insert'")
            row = cur.fetchone()
            assert row is not None
            return int(row[1])
    finally:
        conn.close()


def test_rows_are_written_in_batches_off_the_request_path(mariadb: MariaDBServer) -> None:
    settings = fresh_database(mariadb)
    with pool_of(settings) as pool:
        log = RequestLog(pool, flush_interval=0.3, batch_size=100)
        inserts_before = _inserts(mariadb)
        job_id = new_job_id()
        started = time.monotonic()
        log.record(_entry(0, key_id=7, tenant="acme", job_id=job_id, client_addr="10.0.0.1"))
        for n in range(1, 250):
            log.record(_entry(n, job_id="not-an-id", path="/v1/" + "x" * 600))
        assert time.monotonic() - started < 0.5  # nobody waited on MySQL
        wait_until(lambda: _count(pool) == 250, 15, what="250 rows in request_log")
        # 250 rows in a handful of statements, not 250
        assert _inserts(mariadb) - inserts_before <= 5
        log.close()
        assert (log.written, log.dropped, log.pending) == (250, 0, 0)

        (first,) = query(
            mariadb,
            settings.database,
            "SELECT key_id, tenant, method, status, latency_ms, job_id, client_addr "
            "FROM request_log WHERE path = '/v1/jobs/0'",
        )
        assert first == (7, "acme", "GET", 200, 2, job_id, "10.0.0.1")
        lengths = query(
            mariadb, settings.database, "SELECT MAX(CHAR_LENGTH(path)) FROM request_log"
        )
        assert lengths == [(512,)]  # cut to fit, not refused


def test_close_flushes_what_is_buffered(mariadb: MariaDBServer) -> None:
    settings = fresh_database(mariadb)
    with pool_of(settings) as pool:
        log = RequestLog(pool, flush_interval=60.0, batch_size=1000)
        for n in range(30):
            log.record(_entry(n))
        log.close(timeout=10)
        assert _count(pool) == 30 and log.written == 30


def test_rows_wait_out_an_outage_and_the_oldest_are_dropped_when_full(tmp_path: Path) -> None:
    with own_mariadb(tmp_path / "mariadb") as own, pool_of(own.settings) as pool:
        log = RequestLog(pool, flush_interval=0.2, batch_size=20, max_buffer=100)
        for n in range(10):
            log.record(_entry(n))
        wait_until(lambda: log.written == 10, 15, what="the first rows to be written")

        own.stop()
        started = time.monotonic()
        for n in range(10, 160):
            log.record(_entry(n))
        assert time.monotonic() - started < 0.5  # recording never blocks, MySQL or not
        # a flush attempt fails meanwhile; the buffer keeps the newest 100
        # a batch out for a failed flush goes back to the buffer, or is dropped if full
        wait_until(
            lambda: log.pending + log.written + log.dropped == 160,
            10,
            what="every row to be buffered, written or counted as dropped",
        )
        assert log.dropped == 50

        own.start()
        wait_until(lambda: log.pending == 0, 30, what="the buffer to drain after the outage")
        log.close()
        assert log.dropped == 50 and log.written == 110
        assert _count(pool) == 110
        paths = {p for (p,) in _paths(pool)}
        assert paths == {f"/v1/jobs/{n}" for n in [*range(10), *range(60, 160)]}


def _paths(pool: ConnectionPool) -> list[tuple[str]]:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT path FROM request_log")
        return list(cur.fetchall())

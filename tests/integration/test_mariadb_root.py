"""MariaDB's root in the dev cluster and the tests: a random password from the first start,
and no way in over TCP."""

from __future__ import annotations

import dataclasses

import pytest

from zkq.coordinator.errors import DatabaseUnavailable
from zkq.coordinator.mysql import MySQLSettings, connect
from zkq.dev.mariadb import HOST, MariaDBServer

pytestmark = pytest.mark.integration


def _root(server: MariaDBServer, password: str, through_socket: bool = True) -> MySQLSettings:
    return MySQLSettings(
        HOST,
        server.port,
        "root",
        password,
        "mysql",
        str(server.socket_path) if through_socket else None,
        connect_timeout=2.0,
    )


def test_root_needs_its_password_even_through_the_socket(mariadb: MariaDBServer) -> None:
    assert len(mariadb.root_password) >= 20
    with pytest.raises(DatabaseUnavailable, match="Access denied"):
        connect(_root(mariadb, "")).close()
    with pytest.raises(DatabaseUnavailable, match="Access denied"):
        connect(_root(mariadb, "not-" + mariadb.root_password)).close()
    connect(_root(mariadb, mariadb.root_password)).close()  # what root_connection does


def test_root_cannot_log_in_over_tcp_at_all(mariadb: MariaDBServer) -> None:
    with pytest.raises(DatabaseUnavailable):
        connect(_root(mariadb, mariadb.root_password, through_socket=False)).close()
    conn = mariadb.root_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT host FROM mysql.user WHERE user = 'root'")
            assert [host for (host,) in cur.fetchall()] == ["localhost"]
    finally:
        conn.close()


def test_roots_password_goes_with_the_server_into_the_state(mariadb: MariaDBServer) -> None:
    again = MariaDBServer.from_dict(mariadb.to_dict())
    assert dataclasses.asdict(again) == dataclasses.asdict(mariadb)
    again.root_connection().close()

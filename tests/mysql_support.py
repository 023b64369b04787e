"""What the MySQL tests share: a database of one's own on the session's server, a server of
one's own to break, and a look at tables through root."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zkq.coordinator.migrate import migrate
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.processes import ManagedProcess


def fresh_database(server: MariaDBServer, migrated: bool = True) -> MySQLSettings:
    """A new, empty database (schema applied unless ``migrated`` is False)."""
    settings = server.create_database(f"t_{uuid.uuid4().hex[:16]}")
    if migrated:
        migrate(settings)
    return settings


@contextmanager
def pool_of(settings: MySQLSettings, max_size: int = 4) -> Iterator[ConnectionPool]:
    pool = ConnectionPool(settings, max_size=max_size)
    try:
        yield pool
    finally:
        pool.close()


def scalar(cursor: Any) -> Any:
    """The one value of the one row the last statement returned."""
    row = cursor.fetchone()
    assert row is not None, "no row"
    return row[0]


def query(server: MariaDBServer, database: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows as root sees them (the test's view, apart from the code under test)."""
    conn = server.root_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(f"USE `{database}`")
            cur.execute(sql, args or None)
            return list(cur.fetchall())
    finally:
        conn.close()


def selects(server: MariaDBServer) -> int:
    """The server's count of SELECT statements so far (``Com_select``); root's SHOW that
    reads it is no SELECT, so it does not count itself."""
    ((_, value),) = query(server, "mysql", "SHOW GLOBAL STATUS LIKE 'Com_select'")
    return int(value)


class OwnMariaDB:
    """A server a test may stop, start again or pause, always on the same port and data."""

    def __init__(self, base_dir: Path) -> None:
        self.server = MariaDBServer.create(base_dir)
        self.process: ManagedProcess | None = None

    @property
    def settings(self) -> MySQLSettings:
        return self.server.settings

    def _start(self) -> ManagedProcess:
        self.process = self.server.start("mariadb", self.server.base_dir / "mariadb.log")
        return self.process

    def first_start(self) -> None:
        self.server.install()
        self.server.initialise(self._start(), timeout=60)
        migrate(self.server.settings)

    def stop(self) -> None:
        """SIGTERM by pid, and wait until it is gone."""
        assert self.process is not None
        self.process.stop(30)

    def start(self) -> None:
        self.server.wait_ready(self._start(), timeout=60)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung server)."""
        assert self.process is not None
        self.process.pause()

    def resume(self) -> None:
        assert self.process is not None
        self.process.resume()


@contextmanager
def own_mariadb(base_dir: Path) -> Iterator[OwnMariaDB]:
    """An :class:`OwnMariaDB`, schema applied; stopped by pid whatever the test did."""
    own = OwnMariaDB(base_dir)
    try:
        own.first_start()
        yield own
    finally:
        if own.process is not None:
            own.process.stop(30)  # SIGCONT goes with the SIGTERM: a paused one stops too
        own.server.remove_socket()

"""The boundary with MySQL (MariaDB): settings from one URL, connections with short
timeouts, a small pool, and the one place where pymysql's exceptions become zkq's
(:mod:`zkq.coordinator.errors`).

::

    ZKQ_MYSQL_URL=mysql://zkq:secret@127.0.0.1:3306/zkq
    ZKQ_MYSQL_URL=mysql://zkq:secret@localhost/zkq?unix_socket=/run/mysqld/mysqld.sock
    ZKQ_MYSQL_URL=mysql://zkq:secret@db:3306/zkq?connect_timeout=1&read_timeout=5

Why the timeouts are short: a process must never hang because MySQL is away.  A refused
connection fails at once; a host that does not answer fails after ``connect_timeout`` (1 s
by default); a server that stops answering mid-query after ``read_timeout`` (5 s).  The
caller then sees :class:`~zkq.coordinator.errors.DatabaseUnavailable` and decides: a frontend
answers 503 (authentication fails closed), the pruner tries again later.

Every session runs in autocommit, utf8mb4, and UTC (``time_zone='+00:00'``), so the
``DATETIME`` columns hold UTC whatever the server's own zone is.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pymysql
import pymysql.err
from pymysql.connections import Connection

from zkq.coordinator.errors import (
    ConfigError,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    InvalidInput,
    ZkqError,
)

log = logging.getLogger(__name__)

SCHEMES = ("mysql", "mysql+pymysql", "mariadb")
#: server error codes that mean "the schema is not there yet"
NO_SUCH_TABLE = 1146
BAD_FIELD = 1054
#: a value the server refuses, which pymysql files under OperationalError as it does a lost
#: connection: MariaDB's CHECK constraint (JSON_VALID of a JSON column), MySQL's own, and
#: MySQL's invalid JSON text.  Retrying cannot help; the row must change.
REFUSED_VALUE = frozenset({4025, 3819, 3140})


@dataclass(frozen=True)
class MySQLSettings:
    """Where the database is and how long to wait for it."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "zkq"
    password: str = field(default="", repr=False)
    database: str = "zkq"
    unix_socket: str | None = None
    connect_timeout: float = 1.0
    read_timeout: float = 5.0
    write_timeout: float = 5.0

    @classmethod
    def from_url(cls, url: str) -> MySQLSettings:
        """Parse ``mysql://user:password@host:port/database?option=value``.

        Options: ``unix_socket``, ``connect_timeout``, ``read_timeout``, ``write_timeout``.
        User and password are percent-decoded.
        """
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ConfigError(
                f"MySQL URL must start with mysql://, not {parts.scheme or 'nothing'}:// "
                "(e.g. mysql://zkq:secret@127.0.0.1:3306/zkq)"
            )
        database = parts.path.lstrip("/")
        if not database or "/" in database:
            raise ConfigError("MySQL URL must name one database: mysql://user:pw@host/zkq")
        try:
            port = parts.port or 3306
        except ValueError as exc:
            raise ConfigError(f"MySQL URL has a bad port: {exc}") from exc
        values: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": port,
            "user": unquote(parts.username or "zkq"),
            "password": unquote(parts.password or ""),
            "database": unquote(database),
        }
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "unix_socket":
                values[key] = value or None
            elif key in ("connect_timeout", "read_timeout", "write_timeout"):
                try:
                    values[key] = float(value)
                except ValueError as exc:
                    raise ConfigError(f"MySQL URL option {key}={value!r} is not a number") from exc
                if values[key] <= 0:
                    raise ConfigError(f"MySQL URL option {key} must be positive")
            else:
                raise ConfigError(
                    f"unknown MySQL URL option {key!r} (known: unix_socket, connect_timeout, "
                    "read_timeout, write_timeout)"
                )
        return cls(**values)

    @property
    def url(self) -> str:
        """The URL these settings came from (with the password: keep it out of logs)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        query = []
        if self.unix_socket:
            query.append(f"unix_socket={quote(self.unix_socket)}")
        defaults = MySQLSettings()
        for key in ("connect_timeout", "read_timeout", "write_timeout"):
            if getattr(self, key) != getattr(defaults, key):
                query.append(f"{key}={getattr(self, key):g}")
        tail = ("?" + "&".join(query)) if query else ""
        return f"mysql://{auth}@{self.host}:{self.port}/{quote(self.database)}{tail}"

    @property
    def where(self) -> str:
        """For messages: where the database is, without credentials."""
        place = self.unix_socket or f"{self.host}:{self.port}"
        return f"{place}/{self.database}"


# -- the exception boundary --------------------------------------------------------------------
def translate(exc: BaseException) -> ZkqError:
    """pymysql's exception as zkq's; only this module maps them."""
    if isinstance(exc, ZkqError):
        return exc
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = exc.args[1] if len(exc.args) > 1 else str(exc)
    detail = f"({code}) {text}" if code else f"{type(exc).__name__}: {text or 'connection closed'}"
    if code in REFUSED_VALUE:
        return InvalidInput(f"MySQL refused a value: {detail}")
    if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InterfaceError):
        # lost or refused connections, access denied, lock wait timeouts and deadlocks:
        # all "this database cannot serve us right now"
        return DatabaseUnavailable(f"MySQL is unavailable: {detail}; retry later")
    if isinstance(exc, pymysql.err.IntegrityError):
        return Conflict(f"MySQL refused a duplicate or dangling row: {detail}")
    if isinstance(exc, pymysql.err.DataError):
        return InvalidInput(f"MySQL refused a value: {detail}")
    if code in (NO_SUCH_TABLE, BAD_FIELD):
        return DatabaseError(
            f"the database schema is missing or old: {detail}; run `zkq db migrate`"
        )
    if isinstance(exc, pymysql.err.Error):
        return DatabaseError(f"MySQL refused a statement: {detail}")
    return ZkqError(f"{type(exc).__name__}: {exc}")


@contextmanager
def mysql_errors() -> Iterator[None]:
    """Run a block, raising zkq errors instead of pymysql's."""
    try:
        yield
    except ZkqError:
        raise
    except pymysql.err.Error as exc:
        raise translate(exc) from exc


def connect(settings: MySQLSettings, timeout: float | None = None, **overrides: Any) -> Connection:
    """One new connection.  ``timeout`` overrides the connect timeout; ``overrides`` go to
    pymysql (e.g. ``read_timeout`` for a statement known to wait, such as GET_LOCK)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "password": settings.password,
        "database": settings.database,
        "unix_socket": settings.unix_socket,
        "connect_timeout": timeout if timeout is not None else settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "write_timeout": settings.write_timeout,
        "charset": "utf8mb4",
        "autocommit": True,
        "init_command": "SET time_zone = '+00:00'",
    }
    options.update(overrides)
    with mysql_errors():
        return pymysql.connect(**options)


# -- time columns ------------------------------------------------------------------------------
def to_datetime(unix_seconds: float | None) -> datetime | None:
    """A Unix time as the naive UTC datetime a DATETIME(6) column holds (sessions are UTC)."""
    if unix_seconds is None:
        return None
    return datetime.fromtimestamp(unix_seconds, UTC).replace(tzinfo=None)


def from_datetime(value: datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=UTC).timestamp()


# -- the pool ----------------------------------------------------------------------------------
class ConnectionPool:
    """Connections of one process, reused last-in-first-out, at most ``max_size`` at once.

    Safe to share between threads, and between greenlets once gevent has patched the
    standard library (gunicorn's gevent worker does so before the app is imported: build
    the pool in the app factory, never at import time).

    A connection that failed with :class:`DatabaseUnavailable` (or was interrupted) is
    closed, never returned, and so are the idle ones: a server that restarted dropped them
    all, and each would otherwise fail one more caller.  The next checkout opens a fresh
    connection, so the pool reconnects by itself once MySQL is back (the caller that met
    the failure sees it, and retries or answers 503).  A connection idle for longer than
    ``ping_after`` is pinged before use, because the server may have closed it
    (``wait_timeout``) while it sat in the pool.  After a fork the child forgets the
    parent's connections without closing them: closing would send COM_QUIT on a socket
    the parent still uses.
    """

    def __init__(
        self,
        settings: MySQLSettings,
        max_size: int = 8,
        acquire_timeout: float = 5.0,
        ping_after: float = 30.0,
    ) -> None:
        if max_size < 1:
            raise ValueError("a pool needs at least one connection")
        self.settings = settings
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.ping_after = ping_after
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: queue.LifoQueue[tuple[Connection, float]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(self.max_size)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """Borrow a connection; pymysql's errors inside the block come out as zkq's."""
        if self._pid != os.getpid():
            self._reset()
        if not self._slots.acquire(timeout=self.acquire_timeout):
            raise DatabaseUnavailable(
                f"all {self.max_size} MySQL connections of this process stayed busy for "
                f"{self.acquire_timeout:g}s; retry later"
            )
        try:
            conn = self._checkout()
            try:
                with mysql_errors():
                    yield conn
            except DatabaseUnavailable:
                close_quietly(conn)
                self.close()
                raise
            except Exception:
                # the caller's error (or a refused statement): the connection is sound
                # unless it was mid-transaction, which a rollback settles
                self._recycle(conn)
                raise
            except BaseException:
                # interrupted mid-protocol (a greenlet killed, Ctrl-C): state unknown
                close_quietly(conn)
                raise
            else:
                self._idle.put((conn, time.monotonic()))
        finally:
            self._slots.release()

    def _checkout(self) -> Connection:
        while True:
            try:
                conn, since = self._idle.get_nowait()
            except queue.Empty:
                return connect(self.settings)
            if time.monotonic() - since < self.ping_after:
                return conn
            try:
                conn.ping(reconnect=False)
                return conn
            except pymysql.err.Error:
                close_quietly(conn)

    def _recycle(self, conn: Connection) -> None:
        try:
            conn.rollback()
        except pymysql.err.Error:
            close_quietly(conn)
            return
        self._idle.put((conn, time.monotonic()))

    def close(self) -> None:
        """Close the idle connections (those in use close when given back, if at all)."""
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            close_quietly(conn)


def close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except Exception:  # already broken: closing it is all we wanted
        log.debug("closing a broken MySQL connection failed", exc_info=True)


__all__ = [
    "ConnectionPool",
    "MySQLSettings",
    "close_quietly",
    "connect",
    "from_datetime",
    "mysql_errors",
    "to_datetime",
    "translate",
]

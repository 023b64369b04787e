"""Numbered schema migrations (``coordinator/migrations/NNNN_name.sql``), applied in order
and recorded once each in ``schema_migrations``.

Rules for a migration file:

- a new change is a new file with the next number; an applied file is never edited (its
  SHA-256 is recorded, and :func:`migrate` refuses to run against a changed one);
- statements end with ``;`` at the end of a line; whole-line ``--`` comments are dropped;
- each statement must be safe to run twice (``CREATE TABLE IF NOT EXISTS``, ``ADD COLUMN
  IF NOT EXISTS``, ...): MySQL commits DDL statement by statement, so a migration that
  failed half-way is simply run again from the top.

Two processes may migrate at once (two coordinators starting, an operator and a deploy):
``GET_LOCK`` serialises them, and the second finds everything applied.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from pymysql.connections import Connection

from zkq.coordinator.errors import DatabaseError, DatabaseUnavailable
from zkq.coordinator.mysql import MySQLSettings, close_quietly, connect, mysql_errors

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT UNSIGNED NOT NULL,
    name       VARCHAR(200) NOT NULL,
    checksum   CHAR(64) CHARACTER SET ascii NOT NULL,
    applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def statements(self) -> list[str]:
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in _STATEMENT_END.split(body) if s.strip()]


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    applied_at: datetime | None


def available() -> list[Migration]:
    """The migrations shipped with this zkq, in order."""
    found: dict[int, Migration] = {}
    for entry in resources.files("zkq.coordinator").joinpath("migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise DatabaseError(f"two migrations are numbered {version:04d}: renumber one")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _lock_name(settings: MySQLSettings) -> str:
    # GET_LOCK names are server-wide: scope ours to the database (64 characters at most)
    return f"zkq.migrate.{settings.database}"[:64]


def _applied(conn: Connection, create: bool) -> dict[int, tuple[str, datetime]]:
    with conn.cursor() as cur:
        if create:
            cur.execute(CREATE_MIGRATIONS_TABLE)
        elif not cur.execute("SHOW TABLES LIKE 'schema_migrations'"):
            return {}
        cur.execute("SELECT version, checksum, applied_at FROM schema_migrations")
        return {int(v): (str(c), a) for v, c, a in cur.fetchall()}


def _check_unchanged(migration: Migration, recorded: str) -> None:
    if recorded != migration.checksum:
        raise DatabaseError(
            f"migration {migration.label} changed after it was applied: restore the file "
            "and put the change in a new numbered migration"
        )


def migrate(
    settings: MySQLSettings,
    lock_timeout: float = 60.0,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Migration]:
    """Apply what is missing, in order; return what this call applied (often nothing)."""
    # GET_LOCK blocks on the server: the read timeout must outlast the lock wait
    conn = connect(settings, read_timeout=lock_timeout + settings.read_timeout)
    applied_now: list[Migration] = []
    try:
        with mysql_errors(), conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (_lock_name(settings), lock_timeout))
            row = cur.fetchone()
            if not row or row[0] != 1:
                raise DatabaseUnavailable(
                    f"another process held the migration lock for {lock_timeout:g}s; "
                    "try again when it is done"
                )
            applied = _applied(conn, create=True)
            for migration in available():
                if migration.version in applied:
                    _check_unchanged(migration, applied[migration.version][0])
                    continue
                progress(f"applying {migration.label}")
                for statement in migration.statements():
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                applied_now.append(migration)
    finally:
        # closing the session releases the lock, also when the connection broke mid-way
        close_quietly(conn)
    return applied_now


def status(settings: MySQLSettings) -> list[MigrationStatus]:
    """Each shipped migration and when it was applied (``None``: not yet)."""
    conn = connect(settings)
    try:
        with mysql_errors():
            applied = _applied(conn, create=False)
    finally:
        close_quietly(conn)
    out = []
    for migration in available():
        recorded = applied.get(migration.version)
        if recorded is not None:
            _check_unchanged(migration, recorded[0])
        out.append(MigrationStatus(migration, recorded[1] if recorded else None))
    return out

"""The MySQL pieces that need no server: settings, error translation, migrations on disk,
bucket times, key formats, rows of the request log."""

from __future__ import annotations

import pymysql.err
import pytest

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import (
    ConfigError,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    InvalidInput,
)
from zkq.coordinator.ids import id_time, new_job_id
from zkq.coordinator.migrate import Migration, available
from zkq.coordinator.mysql import MySQLSettings, from_datetime, to_datetime, translate
from zkq.coordinator.paths import bucket_of
from zkq.coordinator.retention import bucket_span, prune_interval
from zkq.frontend.keys import parse_scopes
from zkq.frontend.requestlog import RequestRecord


def test_settings_from_a_url_and_back() -> None:
    s = MySQLSettings.from_url("mysql://app%40x:p%3Ass@db.example:3307/zkq_prod?read_timeout=2")
    assert (s.host, s.port, s.user, s.password, s.database) == (
        "db.example",
        3307,
        "app@x",
        "p:ss",
        "zkq_prod",
    )
    assert (s.connect_timeout, s.read_timeout, s.write_timeout) == (1.0, 2.0, 5.0)
    assert MySQLSettings.from_url(s.url) == s
    assert "p:ss" not in repr(s) and "p%3Ass" not in s.where


def test_settings_with_a_socket_and_defaults() -> None:
    s = MySQLSettings.from_url("mysql://zkq@localhost/zkq?unix_socket=/run/mysqld/mysqld.sock")
    assert s.unix_socket == "/run/mysqld/mysqld.sock" and s.port == 3306 and s.password == ""
    assert MySQLSettings.from_url(s.url) == s


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@h/db",
        "mysql://u:p@h/",
        "mysql://u:p@h:notaport/db",
        "mysql://u:p@h/db?read_timeout=-1",
        "mysql://u:p@h/db?colour=blue",
    ],
)
def test_bad_urls_say_what_is_wrong(url: str) -> None:
    with pytest.raises(ConfigError):
        MySQLSettings.from_url(url)


def test_cluster_config_carries_mysql_and_retention() -> None:
    env = {"ZKQ_MYSQL_URL": "mysql://zkq:pw@127.0.0.1:3306/zkq", "ZKQ_RETENTION": "120"}
    config = ClusterConfig.load(env)
    assert config.mysql is not None and config.mysql.password == "pw"
    assert config.retention_seconds == 120.0
    assert ClusterConfig.load({}).mysql is None
    assert ClusterConfig.load(env, retention=5.0).retention_seconds == 5.0
    with pytest.raises(ConfigError):
        ClusterConfig.load({"ZKQ_RETENTION": "-1"})


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (pymysql.err.OperationalError(2003, "Can't connect"), DatabaseUnavailable),
        (pymysql.err.OperationalError(1213, "Deadlock found"), DatabaseUnavailable),
        (pymysql.err.InterfaceError(0, ""), DatabaseUnavailable),
        (pymysql.err.IntegrityError(1062, "Duplicate entry"), Conflict),
        (pymysql.err.DataError(1406, "Data too long"), InvalidInput),
        # pymysql files a refused CHECK (a JSON column's JSON_VALID) as OperationalError
        (pymysql.err.OperationalError(4025, "CONSTRAINT `t.record` failed"), InvalidInput),
        (pymysql.err.OperationalError(3140, "Invalid JSON text"), InvalidInput),
        (pymysql.err.ProgrammingError(1146, "Table 'zkq.api_keys' doesn't exist"), DatabaseError),
        (pymysql.err.ProgrammingError(1064, "You have an error in your SQL"), DatabaseError),
    ],
)
def test_pymysql_errors_become_zkq_errors(exc: Exception, expected: type) -> None:
    translated = translate(exc)
    assert type(translated) is expected
    if isinstance(exc, pymysql.err.ProgrammingError) and exc.args[0] == 1146:
        assert "zkq db migrate" in str(translated)


def test_datetimes_are_utc_and_exact_to_the_microsecond() -> None:
    assert to_datetime(None) is None
    assert from_datetime(to_datetime(1_700_000_000.123456)) == 1_700_000_000.123456


def test_shipped_migrations_are_numbered_and_split_into_statements() -> None:
    found = available()
    # at least the eight shipped at this writing: an empty list would pass the checks below
    assert len(found) >= 8 and found[0].label == "0001_api_keys"
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    for migration in found:
        statements = migration.statements()
        assert statements and all(";" not in s.rstrip()[-1:] for s in statements)


def test_statements_skip_comments_and_split_at_line_ends() -> None:
    sql = "-- a comment; with a semicolon;\nCREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1) ;\n"
    assert Migration(9, "t", sql).statements() == [
        "CREATE TABLE a (x INT)",
        "INSERT INTO a VALUES (1)",
    ]


def test_bucket_span_brackets_the_ids_in_it() -> None:
    job_id = new_job_id()
    era, tick = bucket_of(job_id)
    start, end = bucket_span(era + tick)
    assert start <= id_time(job_id) <= end
    assert end - start == pytest.approx(1.023, abs=0.001)
    era_start, era_end = bucket_span(era)
    assert era_start <= start and end <= era_end
    assert era_end - era_start == pytest.approx(2**20 / 1000, abs=0.002)
    with pytest.raises(ValueError):
        bucket_span("not-a-bucket")


def test_prune_interval_stays_between_a_second_and_a_minute() -> None:
    assert [prune_interval(r) for r in (0, 100, 3600, 86400)] == [1.0, 10.0, 60.0, 60.0]


def test_scopes_parse_and_refuse_unknown_ones() -> None:
    assert parse_scopes("submit, read") == {"submit", "read"}
    for bad in ("", "submit,delete", ","):
        with pytest.raises(InvalidInput):
            parse_scopes(bad)


def test_request_rows_fit_their_columns() -> None:
    row = RequestRecord(
        at=1_700_000_000.0,
        method="GET",
        path="/" + "p" * 1000,
        status=200,
        latency_ms=12.6,
        job_id="../etc/passwd",
        client_addr="x" * 100,
    ).row()
    path, latency, job_id, addr = row[4], row[6], row[7], row[8]
    assert isinstance(path, str) and len(path) == 512
    assert isinstance(addr, str) and len(addr) == 45
    assert latency == 13 and job_id is None

"""Fixtures of the integration tests: a job store under a root of its own on the session's
ensemble, and a database of its own on the session's MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.mysql_support import fresh_database, pool_of
from zkq.coordinator import zk
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.mysql import ConnectionPool, MySQLSettings
from zkq.coordinator.store import JobStore
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.zookeeper import ZooKeeperEnsemble


@pytest.fixture
def store(ensemble: ZooKeeperEnsemble) -> Iterator[JobStore]:
    """A store on a session of its own, under a fresh root with the fixed parents made, and
    the default limits; no service runs against it.  The session is closed at the end."""
    config = ClusterConfig.load({}, hosts=ensemble.connect_string, root=f"/t-{uuid.uuid4().hex}")
    session = zk.connect(config.zk, name="test")
    # generous: the ensemble is shared by every test of a loaded machine
    assert session.start(wait=30)
    try:
        session.ensure_paths(config.zk.layout.fixed_parents())
        yield JobStore(session, config.limits)
    finally:
        session.stop()


@pytest.fixture
def database(mariadb: MariaDBServer) -> MySQLSettings:
    """A new database with the schema applied."""
    return fresh_database(mariadb)


@pytest.fixture
def pool(database: MySQLSettings) -> Iterator[ConnectionPool]:
    with pool_of(database) as p:
        yield p

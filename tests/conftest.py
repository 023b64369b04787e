"""Fixtures shared by every test folder.  Each one stops what it starts, also on failure."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.teardown import (  # noqa: F401 - hooks, found by name
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_teardown,
    pytest_sessionfinish,
    pytest_unconfigure,
)
from zkq.dev.mariadb import MariaDBServer
from zkq.dev.zookeeper import ZooKeeperEnsemble

# The deployment tests (tests/deploy) build Debian roots, start a dozen test hosts and run
# Ansible against them: `make test-deploy` runs them (it sets ZKQ_DEPLOY_TESTS=1), a plain
# `pytest` or `make test` leaves them out.
collect_ignore = [] if os.environ.get("ZKQ_DEPLOY_TESTS") == "1" else ["deploy"]


@pytest.fixture(scope="session")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """A three-node ZooKeeper ensemble for the whole test session.

    Fast timings: tick 200 ms, sessions granted between 0.4 s and 10 s, so an expiry test
    waits well under a second.  It is shared: do not stop its nodes (start your own
    :class:`ZooKeeperEnsemble` for that), and keep your znodes under a root of your own.
    """
    zk = ZooKeeperEnsemble(
        tmp_path_factory.mktemp("zookeeper"),
        size=3,
        tick_ms=200,
        min_session_ms=400,
        max_session_ms=10_000,
    )
    try:
        zk.start(timeout=60)
        yield zk
    finally:
        zk.stop()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """A MariaDB server for the whole test session, stopped by pid at the end (also when
    tests fail).  It is shared: take a database of your own with
    ``mariadb.create_database(name)`` (``tests/mysql_support.py`` has helpers), and start
    a server of your own to stop or pause it."""
    server = MariaDBServer.create(tmp_path_factory.mktemp("mariadb"))
    process = None
    try:
        server.install()
        process = server.start("mariadb", server.base_dir / "mariadb.log")
        server.initialise(process, timeout=60)
        yield server
    finally:
        if process is not None:
            process.stop(30)
        server.remove_socket()

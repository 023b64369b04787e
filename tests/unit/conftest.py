"""Fixtures of the unit tests: a Flask app with nothing behind it, and a cluster on the
in-memory ZooKeeper."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.memory_support import MemoryCluster
from tests.support import offline_app


@pytest.fixture
def app() -> Iterator[Flask]:
    with offline_app() as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cluster() -> Iterator[MemoryCluster]:
    """One in-memory ensemble; every session made on it is stopped after the test."""
    c = MemoryCluster()
    try:
        yield c
    finally:
        c.close()

"""Fixtures of the unit tests that need a Flask app (and nothing running)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from zkq.dev.ports import free_port
from zkq.frontend.app import create_app
from zkq.frontend.resources import of


@pytest.fixture
def app() -> Iterator[Flask]:
    # ZooKeeper at a port where nothing listens, no MySQL at all
    app = create_app({"ZK_HOSTS": f"127.0.0.1:{free_port()}", "ZK_DISCONNECTED_WAIT": 0.2})
    try:
        yield app
    finally:
        of(app).stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()

"""kazoo's narration of its connection attempts is hushed for a service that reports
outages itself, and nothing else kazoo says loses its level."""

from __future__ import annotations

import logging

import pytest

from zkq.coordinator.zk.outages import KazooLog


@pytest.mark.parametrize("quiet", [False, True])
def test_narration_is_debug_once_quiet_and_real_errors_keep_their_level(
    quiet: bool, caplog: pytest.LogCaptureFixture
) -> None:
    narration = KazooLog(logging.getLogger("kazoo.test-outages"))
    narration.quiet = quiet
    with caplog.at_level(logging.DEBUG, logger="kazoo.test-outages"):
        # as kazoo's connection loop says them (kazoo/protocol/connection.py)
        narration.info("Connecting to %s(%s):%s, use_ssl: %r", "h", "127.0.0.1", 1, False)
        narration.warning("Connection dropped: %s", "socket connection error: Connection refused")
        narration.warning("AUTH_FAILED closing: %s", "bad credential")
        narration.warning("Session has expired")
        narration.exception("Unhandled exception in connection loop")
    levels = {r.getMessage().split(":")[0].split(" (")[0]: r.levelno for r in caplog.records}
    chatty = logging.DEBUG if quiet else logging.WARNING
    assert levels["Connection dropped"] == chatty
    assert levels["Connecting to h(127.0.0.1)"] == (logging.DEBUG if quiet else logging.INFO)
    assert levels["AUTH_FAILED closing"] == logging.WARNING
    assert levels["Session has expired"] == logging.WARNING
    assert levels["Unhandled exception in connection loop"] == logging.ERROR
    assert narration.last_error == "socket connection error: Connection refused"

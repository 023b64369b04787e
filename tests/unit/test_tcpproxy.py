"""The fault proxy's partition (``zkq.dev.tcpproxy``): silence both ways, not a refusal,
then fresh connections once healed.  Only loopback sockets of the test's own."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from zkq.dev.tcpproxy import CuttingProxy


@pytest.fixture
def echo() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()


def connect(proxy: CuttingProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def test_a_partition_black_holes_then_heals(echo: int) -> None:
    with CuttingProxy("127.0.0.1", echo) as proxy:
        before = connect(proxy)
        before.sendall(b"ping")
        assert before.recv(16) == b"ping"
        proxy.partition()
        before.sendall(b"lost")
        during = connect(proxy)  # accepted, as a host behind a dead link would not refuse
        during.sendall(b"also lost")
        for sock in (before, during):
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(16)  # silence, not a reset
        proxy.heal()
        # what was open across the partition ends: its bytes were dropped
        for sock in (before, during):
            sock.settimeout(5)
            assert sock.recv(16) == b""
            sock.close()
        after = connect(proxy)
        after.sendall(b"again")
        assert after.recv(16) == b"again"
        after.close()

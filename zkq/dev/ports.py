"""Free TCP ports on the loopback interface, so that every local cluster (and every test
session) can run next to another one without fixed ports colliding.

Why not simply bind to port 0: the kernel then picks from its *ephemeral* range, the same
range it uses for the source port of every outgoing connection.  Between the moment we
choose a port and the moment a server binds it (a JVM takes a second or two to start),
any client connecting anywhere - a ZooKeeper peer dialling its neighbours, a kazoo client
in a test - may be given that very port as its source port, and the server then fails with
"address already in use".  So we choose ports just *below* the ephemeral range, where the
kernel never assigns source ports, and check each one by binding it.
"""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: how far below the ephemeral range we pick (and never below this port)
_SPAN, _FLOOR = 16384, 10000


def _candidate_range() -> tuple[int, int] | None:
    """Ports below the kernel's ephemeral range, or None to let the kernel choose."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    start = max(_FLOOR, low - _SPAN)
    return (start, low - 1) if low - 1 - start >= 1000 else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now.

    It is released before it is returned, so another process could take it before ours
    binds it; outside the ephemeral range that takes another program choosing the same
    port on purpose, which is rare on a dev machine and shows up as "address in use" in
    the server's log.
    """
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct free ports.

    All the sockets stay bound until every port is chosen, so no port is handed out twice.
    """
    if n < 0:
        raise ValueError(f"cannot allocate {n} ports")
    candidates = _candidate_range()
    with ExitStack() as stack:
        ports: list[int] = []
        attempts = 0
        while len(ports) < n:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            attempts += 1
            # After many misses (a crowded range) fall back to the kernel's choice.
            port = random.randint(*candidates) if candidates and attempts < 50 * n else 0
            try:
                sock.bind((host, port))
            except OSError:
                continue
            ports.append(sock.getsockname()[1])
        return ports

"""The ports of a dev cluster's previous run, which the next ``up`` takes again when they
are free, so a bookmark, an exported ``ZKQ_URL`` or a client's connect string still works
after ``zkq dev down`` and ``zkq dev up`` (or ``make down`` and ``make run``).

``<state dir>/ports.json`` maps what holds ports to their list, in order::

    {"zookeeper": [client, quorum, election, ...per node], "mariadb": [port],
     "frontend": [port, ...], "haproxy": [http, stats, https]}

It is written with the state file and, unlike it, outlives ``down`` and the fresh start of
the next ``up``.  A port somebody else took meanwhile is replaced by a fresh one
(:mod:`.ports`), the others are kept.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from zkq.dev.ports import free_ports

if TYPE_CHECKING:
    from zkq.dev.members import Member
    from zkq.dev.zookeeper import ZooKeeperEnsemble

PORTS_FILE = "ports.json"
HOST = "127.0.0.1"


def is_free(port: int, host: str = HOST) -> bool:
    """Nothing listens on ``port``.  SO_REUSEADDR, as every server of the cluster binds:
    the connections of the previous run that linger in TIME_WAIT do not stop it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortBook:
    """The previous run's ports (empty for a first run), handed out again by :meth:`claim`."""

    def __init__(self, state_dir: Path, previous: Mapping[str, list[int]] | None = None) -> None:
        self.path = Path(state_dir) / PORTS_FILE
        self.previous: dict[str, list[int]] = {k: list(v) for k, v in (previous or {}).items()}
        self._claimed: set[int] = set()

    @classmethod
    def recall(cls, state_dir: Path) -> PortBook:
        """The book of the last run from ``state_dir``; an empty one if it is unreadable."""
        return cls(state_dir, _read(Path(state_dir) / PORTS_FILE))

    def claim(self, key: str, n: int) -> list[int]:
        """``n`` ports for ``key``: the previous run's where they are free, fresh ones for
        the rest (never one the previous run used for something else)."""
        kept: list[int] = []
        for port in self.previous.get(key, [])[:n]:
            reusable = port not in self._claimed and port not in kept and is_free(port)
            kept.append(port if reusable else 0)
        kept += [0] * (n - len(kept))
        taken = {p for ports in self.previous.values() for p in ports} | self._claimed
        fresh = iter(_fresh(kept.count(0), avoid=taken | set(kept)))
        chosen = [port or next(fresh) for port in kept]
        self._claimed.update(chosen)
        return chosen

    def remember(self, current: Mapping[str, Iterable[int]]) -> None:
        """Record ``current`` over what the file holds (a key this run has not reached yet
        keeps the previous run's ports, for a next attempt)."""
        book = {**_read(self.path), **{k: list(v) for k, v in current.items()}}
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(book) + "\n")
        os.replace(tmp, self.path)


def in_use(ensemble: ZooKeeperEnsemble | None, members: Iterable[Member]) -> dict[str, list[int]]:
    """What a cluster's processes hold now, as the book records it."""
    book: dict[str, list[int]] = {}
    if ensemble is not None:
        book["zookeeper"] = [
            p for n in ensemble.nodes for p in (n.client_port, n.quorum_port, n.election_port)
        ]
    for member in members:
        book.setdefault(member.role, []).extend(member.ports.values())
    return {key: ports for key, ports in book.items() if ports}


def _fresh(n: int, avoid: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        ports += [p for p in free_ports(n - len(ports), HOST) if p not in avoid | set(ports)]
    return ports


def _read(path: Path) -> dict[str, list[int]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): [p for p in v if isinstance(p, int) and 0 < p < 65536]
        for k, v in data.items()
        if isinstance(v, list)
    }

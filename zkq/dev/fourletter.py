"""ZooKeeper's four-letter words (``ruok``, ``srvr``, ``mntr``, ...): a plain TCP exchange
on the client port, which works whatever state the server is in, quorum or not.

The words a server answers must be listed in ``4lw.commands.whitelist`` in its zoo.cfg.
"""

from __future__ import annotations

import socket
from typing import Any


def four_letter(host: str, port: int, cmd: str, timeout: float = 2.0) -> str:
    """Send a four-letter word and return the whole reply (the server closes when done).

    Raises :class:`OSError` (refused, reset, timed out) when the node does not answer.
    """
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(cmd.encode("ascii"))
        chunks: list[bytes] = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def parse_srvr(text: str) -> dict[str, Any]:
    """``srvr`` output as a dict: mode, zxid, latency (min/avg/max ms), connections, ..."""
    if "not currently serving" in text:
        return {"mode": "not serving"}
    info: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "mode":
            info["mode"] = value
        elif key == "zxid":
            info["zxid"] = value
        elif key == "latency min/avg/max":
            low, avg, high = value.split("/")
            info["latency_ms"] = {"min": float(low), "avg": float(avg), "max": float(high)}
        elif key in ("connections", "outstanding", "node count", "received", "sent"):
            info[key.replace(" ", "_")] = int(value)
    return info


def parse_mntr(text: str) -> dict[str, str]:
    """``mntr`` output (``zk_key<TAB>value`` lines) as a dict of strings."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            out[key.strip()] = value.strip()
    return out

"""What the deployment tests read off the test hosts, over SSH as an operator would:
supervised processes, the floating address, the ZooKeeper members' modes, `zkq status`."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.deploy.testbed import Testbed


def program_pid(bed: Testbed, host: str, program: str) -> int | None:
    """The pid of a supervised program that supervisor reports RUNNING, else None."""
    status = bed.run(host, f"supervisorctl status {program}", timeout=15)
    if "RUNNING" not in status.stdout:
        return None
    found = bed.run(host, f"supervisorctl pid {program}", timeout=15).stdout.strip()
    return int(found) if found.isdigit() and int(found) > 0 else None


def vip_holders(bed: Testbed, balancers: Iterable[str], vip: str) -> list[str]:
    return [
        host
        for host in balancers
        if f" {vip}/" in bed.run(host, "ip -o -4 addr show", timeout=15).stdout
    ]


def zookeeper_modes(bed: Testbed, members: Iterable[str]) -> dict[str, str]:
    return {
        host: bed.run(host, "/opt/zkq/libexec/zk-probe", timeout=15).stdout.strip()
        for host in members
    }


def status(bed: Testbed, host: str = "zk1") -> tuple[int, dict[str, Any]]:
    """`zkq status --json` run on ``host``: its exit code (0: every member healthy) and
    the view."""
    done = bed.run(host, "zkq status --json", timeout=60)
    try:
        view = json.loads(done.stdout)
    except ValueError:
        view = {"unparsed": done.stdout, "stderr": done.stderr}
    return done.returncode, view


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> float:
    """Poll ``check`` until it returns a true value; the seconds it took."""
    began = time.monotonic()
    while True:
        if check():
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(every)


def workers_on(bed: Testbed, host: str) -> set[str]:
    """Ids of the live workers registered from ``host``."""
    done = bed.run("zk1", "zkq workers --json", timeout=30)
    if done.returncode != 0:
        return set()
    return {w["id"] for w in json.loads(done.stdout) if w.get("host") == host}


def answers(address: str, port: int, path: str | None = None) -> bool:
    """A TCP connection to address:port is accepted (and, with ``path``, GET answers 200)."""
    try:
        if path is None:
            with socket.create_connection((address, port), timeout=1.0):
                return True
        conn = http.client.HTTPConnection(address, port, timeout=2.0)
        try:
            conn.request("GET", path)
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except OSError:
        return False

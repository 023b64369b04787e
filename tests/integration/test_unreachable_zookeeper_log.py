"""A worker or coordinator that cannot reach ZooKeeper keeps trying, and says so in one
clear line every few seconds rather than in kazoo's warning per connection attempt; once
the ensemble answers, it says so once and gets on with its work.

The services run as a user starts them (the installed ``zkq``), pointed at a port where
nothing listens; the port then starts forwarding to the session's ensemble.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from tests.support import leader_name
from zkq.coordinator.client import Client
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.zk import NoNode
from zkq.dev import processes
from zkq.dev.ports import free_port
from zkq.dev.processes import ManagedProcess, ProcessSpec
from zkq.dev.tcpproxy import CuttingProxy
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble

pytestmark = pytest.mark.integration

ZKQ = str(Path(sys.executable).with_name("zkq"))
STILL_TRYING = "cannot reach ZooKeeper at {hosts} for"


def log_lines(process: ManagedProcess) -> list[str]:
    """What the service wrote (the launcher heads the log with a line of its own)."""
    text = process.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if not line.startswith("=== ")]


def test_an_unreachable_ensemble_is_one_line_every_few_seconds_until_it_answers(
    ensemble: ZooKeeperEnsemble, tmp_path: Path
) -> None:
    port = free_port()
    hosts = f"127.0.0.1:{port}"
    root = f"/outage-{uuid.uuid4().hex[:8]}"
    zk = ["--zk", hosts, "--root", root, "--session-timeout", "3"]
    started = [
        processes.start(ProcessSpec(role, [ZKQ, role, *zk], tmp_path / f"{role}.log"))
        for role in ("worker", "coordinator")
    ]
    still_trying = STILL_TRYING.format(hosts=hosts)
    client = Client(ClusterConfig.load({}, hosts=ensemble.connect_string, root=root))
    try:
        # two reports each: the line repeats while the outage lasts
        def reported_twice() -> bool:
            assert all(p.alive() for p in started), "\n".join(p.log_tail() for p in started)
            return all(sum(still_trying in line for line in log_lines(p)) >= 2 for p in started)

        wait_until(reported_twice, 90, interval=0.2, what="two reports from each service")
        for process in started:
            lines = log_lines(process)
            assert not [line for line in lines if "kazoo" in line], lines
            # nothing but the reports: no stream of the client's narration
            assert all(still_trying in line for line in lines), lines
            assert "last error: socket connection error: Connection refused" in lines[0], lines

        with CuttingProxy("127.0.0.1", ensemble.client_port(0), port=port):
            client.start()

            def working() -> bool:
                try:
                    return bool(client.workers()) and leader_name(client) is not None
                except NoNode:  # the coordinator has not made the election's parent yet
                    return False

            wait_until(working, 90, interval=0.2, what="the worker registered, a leader")
            for process in started:
                connected = f"connected to ZooKeeper at {hosts} again"
                wait_until(
                    lambda: any(connected in line for line in log_lines(process)),  # noqa: B023
                    30,
                    what=f"{process.name} saying it is connected",
                )
            processes.stop_all(started, timeout=15)
    finally:
        client.close()
        processes.stop_all(started, timeout=10)

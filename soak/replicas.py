"""Do the ZooKeeper nodes agree?  Every accepted job read from each node on its own.

A client reads from the one node it is connected to, and ZooKeeper promises that every
node applies the same transactions in the same order.  If a node lost a committed
transaction (its replica diverged), a client connected to it sees an old record: a job
that succeeded may look ``running`` forever there, and no zkq process would ever move it.
So when the soak finds a job lost, it also says whether the nodes disagree about it,
which tells a fault of zkq from one of ZooKeeper.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.client import Client
from zkq.coordinator.errors import ZkqError
from zkq.dev.fourletter import four_letter, parse_srvr
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import HOST, ZooKeeperEnsemble

CHUNK = 500


@dataclass(frozen=True)
class Disagreement:
    job: str
    states: dict[str, str]  # node name -> state there ("missing" when absent)

    def __str__(self) -> str:
        return ", ".join(f"{node} {state}" for node, state in sorted(self.states.items()))


def _zxids(ensemble: ZooKeeperEnsemble) -> set[str]:
    found = set()
    for node in ensemble.nodes:
        try:
            found.add(parse_srvr(four_letter(HOST, node.client_port, "srvr", 2.0)).get("zxid", "?"))
        except OSError:
            found.add("down")
    return found


def compare(
    ensemble: ZooKeeperEnsemble,
    root: str,
    job_ids: Iterable[str],
    settings: Mapping[str, Any] | None = None,
) -> list[Disagreement]:
    """The jobs whose record's state differs between nodes, once every node has applied
    the same last transaction (the cluster is idle by then, so they converge at once
    unless one lost a transaction)."""
    # compare anyway after the wait: a node that stays behind is what this looks for
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: len(_zxids(ensemble)) == 1, 30, interval=0.2, what="equal zxids")
    ids = list(job_ids)
    views: dict[str, dict[str, str]] = {}
    for node in ensemble.nodes:
        try:
            client = Client.connect(f"{HOST}:{node.client_port}", root, **(settings or {}))
        except ZkqError:
            continue  # a node that does not answer has no view to compare
        try:
            view: dict[str, str] = {}
            for i in range(0, len(ids), CHUNK):
                chunk = ids[i : i + CHUNK]
                jobs = client.store.get_many(chunk, time.monotonic() + 30)
                view.update({job_id: str(job.state) for job_id, (job, _) in jobs.items()})
            views[node.name] = view
        except ZkqError:
            continue  # a node that does not answer has no view to compare
        finally:
            client.close()
    out = []
    for job_id in ids:
        states = {name: view.get(job_id, "missing") for name, view in views.items()}
        if len(set(states.values())) > 1:
            out.append(Disagreement(job_id, states))
    return out

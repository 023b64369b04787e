"""What the ensemble itself counts, read through four-letter words before and after a
measured window.

- **Transactions**: every committed write (a create, a ``multi`` however many ops it holds,
  a session created or closed, the deletion of a closed session's ephemerals, and a write
  that failed, e.g. a ``create`` that found ``NodeExists``) takes the next zxid.  The low 32
  bits of the leader's zxid (``srvr``) are a counter of them within one leader epoch.
- **Requests**: ``srvr``'s ``Received`` on each node counts the packets its clients sent
  (reads, writes, pings); the sum over nodes is every request the ensemble served.
- **Watch notifications**: ``mntr`` reports, per server, the sums ``zk_sum_node_{created,
  deleted,changed,children}_watch_count``: how many watchers each event triggered, i.e. how
  many notifications that server sent to its sessions.  A session's watches live on the
  server it is connected to, so the sum over every node is every notification delivered to
  every client (ZooKeeper 3.6 or later).

Neither counter can tell who caused what, so each window is measured on a quiet cluster:
the only sessions are the bench's own (which set no watches) and the processes under test,
and an idle window measured just before gives the background rate to subtract.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from zkq.dev.errors import DevClusterError
from zkq.dev.fourletter import four_letter, parse_mntr, parse_srvr
from zkq.dev.zookeeper import HOST, ZooKeeperEnsemble

WATCH_SUMS = tuple(
    f"zk_sum_node_{event}_watch_count" for event in ("created", "deleted", "changed", "children")
)
LEADER_MODES = ("leader", "standalone")


def split_zxid(zxid: int) -> tuple[int, int]:
    """(epoch, counter) of a zxid: the counter restarts with each new leader's epoch."""
    return zxid >> 32, zxid & 0xFFFFFFFF


@dataclass(frozen=True)
class Counters:
    """One reading of the ensemble."""

    at: float  # time.monotonic()
    zxid: int  # the leader's last committed zxid
    notifications: int  # watch notifications sent, summed over every node
    leader: str
    requests: int = 0  # packets received from clients (srvr "Received"), summed over nodes

    def transactions_since(self, before: Counters) -> int | None:
        """Transactions committed between two readings; None if the leader changed (a new
        epoch restarts the counter, so the difference means nothing)."""
        (e0, c0), (e1, c1) = split_zxid(before.zxid), split_zxid(self.zxid)
        return c1 - c0 if e0 == e1 else None

    def notifications_since(self, before: Counters) -> int:
        return self.notifications - before.notifications

    def requests_since(self, before: Counters) -> int:
        return self.requests - before.requests


@dataclass(frozen=True)
class Window:
    """What happened between two readings."""

    seconds: float
    transactions: int | None
    notifications: int
    requests: int = 0

    @classmethod
    def between(cls, before: Counters, after: Counters) -> Window:
        return cls(
            after.at - before.at,
            after.transactions_since(before),
            after.notifications_since(before),
            after.requests_since(before),
        )


def read_counters(ensemble: ZooKeeperEnsemble, timeout: float = 2.0) -> Counters:
    """Read every node (``srvr`` and ``mntr``); raises DevClusterError without a leader."""
    zxid: int | None = None
    leader = ""
    notifications = 0
    requests = 0
    for node in ensemble.nodes:
        try:
            srvr = parse_srvr(four_letter(HOST, node.client_port, "srvr", timeout))
            mntr = parse_mntr(four_letter(HOST, node.client_port, "mntr", timeout))
        except OSError as exc:
            raise DevClusterError(f"ZooKeeper node {node.name} did not answer: {exc}") from exc
        missing = [key for key in WATCH_SUMS if key not in mntr]
        if missing:
            raise DevClusterError(
                f"{node.name}'s mntr has no {missing[0]}: counting watch notifications "
                "needs ZooKeeper 3.6 or later"
            )
        notifications += sum(int(float(mntr[key])) for key in WATCH_SUMS)
        requests += int(srvr.get("received", 0))
        if srvr.get("mode") in LEADER_MODES and "zxid" in srvr:
            zxid = int(srvr["zxid"], 16)
            leader = node.name
    if zxid is None:
        raise DevClusterError("no ZooKeeper node is leading: cannot read the zxid")
    return Counters(time.monotonic(), zxid, notifications, leader, requests)


def settle(
    ensemble: ZooKeeperEnsemble, quiet: float = 0.6, timeout: float = 15.0, poll: float = 0.2
) -> Counters:
    """Wait until no transaction commits for ``quiet`` seconds (e.g. a leader still cleaning
    up after workers that left), or ``timeout`` passes; return the last reading."""
    deadline = time.monotonic() + timeout
    last = read_counters(ensemble)
    quiet_since = last.at
    while True:
        # a measured interval between two readings, not a wait for a condition
        time.sleep(poll)
        now = read_counters(ensemble)
        if now.zxid != last.zxid:
            quiet_since = now.at
        last = now
        if now.at - quiet_since >= quiet or now.at >= deadline:
            return now

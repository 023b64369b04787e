"""Partitions, not kills: black-holing relays (:class:`zkq.dev.tcpproxy.CuttingProxy`) in
front of one worker and of one ZooKeeper node.

Why relays rather than network namespaces: they need no root and no change to how the
launcher starts processes (a namespace per member would), so the soak runs wherever
``make test`` runs, and they black-hole (silence, not a refused connection), which is what
makes a peer wait out its timeouts as it would on a real network.

- **A worker**: it is started with a connect string of relays, one per ZooKeeper node, so
  cutting them leaves it running but alone; its session expires on the ensemble.
- **A ZooKeeper node**: the ensemble's ``routes`` make every peer reach the node, and the
  node reach every peer, through relays on the quorum and election ports, so cutting them
  takes it out of the quorum while it keeps running.  The routes are read when a node
  starts, so the ensemble is restarted node by node once, after ``up``.  What this does not
  cut: ZooKeeper (3.6+) answers an election connection from a peer with a lower id by
  connecting back to the address that peer *advertises* (its own, real, election port),
  so election messages may bypass the relays; the node's data traffic (a follower's link
  to its leader) cannot, which is what keeps it out of the quorum.  The node's client port
  is not relayed: once out of the quorum the node itself drops its clients (they then
  move to the others), where a real partition would leave them to time out.  The
  partitioned node is ``zk1``: on an election with equal zxids the highest id wins, so
  the two nodes that can still reach each other elect one of themselves.
"""

from __future__ import annotations

from zkq.dev.cluster import DevCluster
from zkq.dev.tcpproxy import CuttingProxy
from zkq.dev.zookeeper import HOST

#: the ZooKeeper node the soak partitions (index; its myid is 1)
ZK_PARTITIONED = 0


class Relays:
    """A set of relays cut and healed together."""

    def __init__(self) -> None:
        self.proxies: list[CuttingProxy] = []

    def add(self, port: int) -> CuttingProxy:
        proxy = CuttingProxy(HOST, port)
        proxy.start()
        self.proxies.append(proxy)
        return proxy

    def partition(self) -> None:
        for p in self.proxies:
            p.partition()

    def heal(self) -> None:
        for p in self.proxies:
            p.heal()

    def close(self) -> None:
        for p in self.proxies:
            p.close()


def worker_relays(cluster: DevCluster) -> tuple[Relays, str]:
    """Relays to every ZooKeeper node, and the connect string through them."""
    assert cluster.ensemble is not None
    relays = Relays()
    hosts = [f"{HOST}:{relays.add(n.client_port).port}" for n in cluster.ensemble.nodes]
    return relays, ",".join(hosts)


def zookeeper_relays(cluster: DevCluster, index: int = ZK_PARTITIONED) -> Relays:
    """Put node ``index``'s quorum and election traffic, both ways, behind relays, and
    restart the ensemble node by node (followers first) so every node reads its routes."""
    ensemble = cluster.ensemble
    assert ensemble is not None
    relays = Relays()
    target = ensemble.nodes[index]
    for peer in ensemble.nodes:
        if peer is target:
            continue
        # how the peer reaches the target, and how the target reaches the peer
        ensemble.routes[f"{peer.myid}>{target.myid}"] = [
            relays.add(target.quorum_port).port,
            relays.add(target.election_port).port,
        ]
        ensemble.routes[f"{target.myid}>{peer.myid}"] = [
            relays.add(peer.quorum_port).port,
            relays.add(peer.election_port).port,
        ]
    leader = ensemble.leader_index()
    order = [i for i in range(ensemble.size) if i != leader] + [
        i for i in range(ensemble.size) if i == leader
    ]
    for i in order:
        cluster.stop_zk_node(i)
        cluster.start_zk_node(i, wait=True, timeout=60)
    return relays

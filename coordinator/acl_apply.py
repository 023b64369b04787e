"""Put the ACL policy on the nodes of a cluster made before ACLs (``zkq acl apply``).

Nodes keep the ACL they were created with: a cluster that ran without ACLs has every node
open to ``world:anyone``, and its services restarted with credentials only protect the nodes
they create from then on.  This walk gives every node under the root (the root included,
its ancestors not: they may be shared) the ACL :class:`~zkq.coordinator.acl.AclPolicy`
gives its path.  It needs the coordinator's credential (ADMIN on the new ACLs; the old
open ones allow anyone).  Run it after every process of the cluster has its credential: a
process still without one would be refused the nodes the walk closed, and the nodes it
creates meanwhile stay open until the next run (running it again is harmless).

The walk lists one level at a time in pipelined rounds (:meth:`ZkSession.get_children_many`)
and sets ACLs the same way, so a tree of 100,000 nodes costs a few hundred round trips.
"""

from __future__ import annotations

from collections.abc import Callable

from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import ZkSession

#: nodes per pipelined round
BATCH = 500


def apply_policy(
    session: ZkSession, layout: Layout, progress: Callable[[int], None] | None = None
) -> int:
    """Set the policy's ACL on the root and every node below it; the number of nodes set.
    A node deleted during the walk is skipped."""
    done = 0
    level = [layout.root]
    while level:
        following: list[str] = []
        for start in range(0, len(level), BATCH):
            chunk = level[start : start + BATCH]
            # children are listed before the ACL changes: either order works for the
            # coordinator's credential, which may read what it closes
            listed = session.get_children_many(chunk)
            applied = session.apply_acl_many(chunk)
            done += sum(applied.values())
            for path, children in listed.items():
                if path == "/":  # a cluster at the top: ZooKeeper's own node is not ours
                    following.extend(f"/{c}" for c in children or () if c != "zookeeper")
                else:
                    following.extend(f"{path}/{child}" for child in children or ())
            if progress is not None:
                progress(done)
        level = following
    return done

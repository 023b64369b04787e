"""The leader's clean-up of emptied pending buckets.

Pending entries live in time buckets derived from the job id (an era of ~17.5 min, a tick
of ~1 s; :mod:`zkq.coordinator.paths`).  A bucket nobody writes into any more would stay
forever as an empty znode, and every listing of its parent would carry its name, so the
leader deletes an empty era or tick once its time has ended and a grace has passed.

The grace is what makes that safe against writers: a submitter whose clock runs behind, or
a retry, requeue or revive that writes into the bucket of the job's *creation*, may still
be about to create an entry there.  Deleting a bucket under such a writer is harmless, only
slower: its multi fails with ``NoNode`` on the create, rolls back, and
:meth:`~zkq.coordinator.store.JobStore.commit` makes the bucket again and goes again.  The
delete itself is unconditional on content: ZooKeeper refuses to delete a node with
children (``NotEmpty``), so an entry that arrived meanwhile keeps its bucket.
"""

from __future__ import annotations

from collections.abc import Callable

from zkq.coordinator.ids import id_time
from zkq.coordinator.strays import fenced_delete
from zkq.coordinator.zk import ZkSession

#: how long an emptied pending bucket is kept after its time ended; it covers submitters
#: whose clocks run behind and tick nodes they are about to write into
EMPTY_SHARD_GRACE = 120.0


def bucket_ended(bucket_prefix: str) -> float | None:
    """When the bucket named by an id prefix (era, or era + tick) ends, in epoch seconds:
    the time of the last id it can hold.  None for a name no id could start with."""
    try:
        return id_time(bucket_prefix.ljust(26, "Z")[:26])
    except ValueError:
        return None


class BucketSweeper:
    """Deletes the leader's empty pending buckets whose time is long past."""

    def __init__(
        self,
        session: ZkSession,
        clock: Callable[[], float],
        grace: float = EMPTY_SHARD_GRACE,
        fence: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``fence``: the leader's election node, checked with each delete (as every write
        of the leader's is; see :func:`~zkq.coordinator.strays.fenced_delete`)."""
        self.session = session
        self.clock = clock
        self.grace = grace
        self.fence = fence

    def drop_if_old(self, path: str, bucket_prefix: str) -> bool:
        """Delete the empty bucket at ``path`` (named by ``bucket_prefix``) if its time
        ended more than the grace ago; True when it was deleted."""
        ended = bucket_ended(bucket_prefix)
        if ended is None or self.clock() - ended < self.grace:
            return False
        # gone already, or written into meanwhile (NotEmpty): keep it
        return fenced_delete(self.session, path, self.fence())

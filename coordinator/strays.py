"""What the leader deletes beside its transitions: index entries whose job is not waiting
there (found as it assigns), and empty buckets; each delete fenced by its election node."""

from __future__ import annotations

import logging

from zkq.coordinator.errors import LeadershipLost
from zkq.coordinator.job import Job
from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import Check, Delete, NoNode, NotEmpty, Op, TransactionFailed, ZkSession

log = logging.getLogger(__name__)


def drop_stray_entry(
    session: ZkSession,
    layout: Layout,
    fence: str | None,
    job_id: str,
    shard: str,
    found: tuple[Job, int] | None,
) -> bool:
    """Delete the entry of ``job_id`` in the index bucket ``shard``, whose record (``found``:
    as read, with its version; None: gone) is not waiting there.  Transactions keep the two
    in step, so this is an entry the record has moved past while our listing was stale, or
    a record removed by hand.  Delete the entry only while the record is still as we read
    it: a job sent back meanwhile (a retry, a revive) has its entry again.  Returns False
    when the record changed (look again), True otherwise.  Raises :class:`LeadershipLost`
    when ``fence`` is gone."""
    try:
        names = session.get_children(shard)
    except NoNode:
        return True
    for name in names:
        if not name.endswith("-" + job_id):
            continue
        head: list[Op] = [Check(fence)] if fence else []
        ops: list[Op] = [Delete(f"{shard}/{name}")]
        if found is not None:
            ops.insert(0, Check(layout.job(job_id), found[1]))
        try:
            session.multi([*head, *ops])
        except TransactionFailed as failed:
            if failed.index < len(head):
                raise LeadershipLost(
                    "the election node is gone: this coordinator no longer leads"
                ) from None
            return False
        log.warning(
            "deleted an index entry whose job is %s",
            found[0].state if found else "gone",
            extra={"job_id": job_id},
        )
    return True


def fenced_delete(session: ZkSession, path: str, fence: str | None) -> bool:
    """Delete ``path`` as the leader: in one multi after a check of its election node
    (``fence``), so nothing a leader that no longer leads deletes applies.  False when the
    node was gone already or has children; :class:`LeadershipLost` when the fence is gone."""
    head: list[Op] = [Check(fence)] if fence else []
    try:
        session.multi([*head, Delete(path)])
    except TransactionFailed as failed:
        if failed.index < len(head):
            raise LeadershipLost(
                "the election node is gone: this coordinator no longer leads"
            ) from None
        if isinstance(failed.error, NoNode | NotEmpty):
            return False
        raise
    return True

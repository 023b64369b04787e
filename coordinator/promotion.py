"""The leader's promotion of due scheduled jobs to pending, in fenced multis
(:meth:`JobStore.promote_many <zkq.coordinator.store.JobStore.promote_many>`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from zkq.coordinator import lifecycle
from zkq.coordinator.errors import LeadershipLost
from zkq.coordinator.job import Job
from zkq.coordinator.lifecycle import Batch
from zkq.coordinator.zk import Check, Create, NoNode, TransactionFailed, zk_errors

if TYPE_CHECKING:
    from zkq.coordinator.store import JobStore


def promote_many(
    store: JobStore, choices: Sequence[tuple[Job, int]], fence: str | None, now: float
) -> tuple[list[Job], list[tuple[Job, BaseException]]]:
    """Promote (job, version) pairs, as many per multi as stay under the byte bound, each
    multi headed by a check of the leader's ``fence``.  A refused step (the record moved:
    a cancel won the race) is set aside with its error and the rest go again, as in
    :meth:`~zkq.coordinator.store.JobStore.assign_many`.  A pending bucket deleted under us
    (the job's creation tick, swept long ago) is made again and the same multi goes again:
    it rolled back, so its versions still hold.  Returns (promoted, refused)."""
    from zkq.coordinator.store import MAX_PARENT_REPAIRS, byte_groups

    promoted: list[Job] = []
    refused: list[tuple[Job, BaseException]] = []
    head = (Check(fence),) if fence else ()
    pending = store.layout.pending + "/"
    for group in byte_groups(list(choices), lambda c: len(c[0].to_bytes())):
        remaining = group
        repairs = 0
        while remaining:
            batch = Batch(
                tuple(lifecycle.promote(store.layout, j, v, now) for j, v in remaining), head
            )
            try:
                with zk_errors():
                    store.session.multi(batch.ops)
                promoted.extend(step.job for step in batch.steps)
                break
            except TransactionFailed as failed:
                position = batch.culprit(failed.index)
                if position is None:
                    raise LeadershipLost(
                        "the election node is gone: this coordinator no longer leads"
                    ) from None
                op = batch.ops[failed.index]
                missing_bucket = (
                    isinstance(op, Create)
                    and isinstance(failed.error, NoNode)
                    and op.path.startswith(pending)
                )
                if missing_bucket and repairs < MAX_PARENT_REPAIRS:
                    repairs += 1
                    store.session.ensure_path(op.path.rsplit("/", 1)[0])
                    continue
                refused.append((remaining[position][0], failed.error))
                remaining = remaining[:position] + remaining[position + 1 :]
    return promoted, refused

"""``/v1/workers`` and ``/v1/queues``: the cluster as operators see it (``admin`` scope,
since they show every tenant's load, not the caller's own)."""

from __future__ import annotations

from typing import Any

from zkq.coordinator import census
from zkq.frontend.api import api
from zkq.frontend.models import QueueList, QueueOut, WorkerList, WorkerOut
from zkq.frontend.resources import current as resources


@api.route(
    "/v1/workers",
    "GET",
    summary="Live workers, their slots and how busy they are",
    scope="admin",
    ok=(200, WorkerList),
    tag="cluster",
)
def list_workers() -> tuple[Any, ...]:
    zk = resources().zk
    with zk.call() as deadline:
        found = census.workers(zk.session, deadline)
    out = []
    for w in found:
        reg = w.registration
        out.append(
            WorkerOut(
                id=w.id,
                host=reg.host,
                pid=reg.pid,
                types=sorted(reg.types),
                slots=reg.slots,
                busy=len(w.inbox),
                pool=reg.pool,
                draining=reg.draining,
                lost_slots=reg.lost_slots,
                started_at=reg.started_at,
                session=w.session,
            )
        )
    return WorkerList(workers=out), 200


@api.route(
    "/v1/queues",
    "GET",
    summary="Per job type: pending depth, age of the oldest pending job, running count",
    scope="admin",
    ok=(200, QueueList),
    tag="cluster",
)
def list_queues() -> tuple[Any, ...]:
    zk = resources().zk
    with zk.call() as deadline:
        stats = census.queues(zk.session, deadline)
    return (
        QueueList(
            queues=[
                QueueOut(
                    type=q.type,
                    depth=q.depth,
                    oldest_age_seconds=q.oldest_age,
                    running=q.running,
                    paused=q.paused,
                )
                for q in stats
            ]
        ),
        200,
    )

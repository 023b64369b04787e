"""``/v1/jobs/bulk/{cancel,requeue}``: act on every job a filter selects, a bounded step
per request (:func:`zkq.coordinator.bulk.step`).

A step selects at most ``limit`` jobs, reads at most ``LIST_SCAN_BUDGET`` records and acts
for about ``ZK_TIMEOUT`` seconds, in chunks each under the gate's own deadline, then
answers with its counts and a ``next_cursor`` while more may match: no request runs
unbounded, and a client repeats the request with the cursor until it is null.  The
cursor is sealed as a list cursor is: for the key's tenant, or an admin's view
(:func:`zkq.frontend.auth.tenant_view`).

Confinement: a key acts on its own tenant's jobs; an admin key on every tenant's, or on
the one its ``tenant`` names.  Cancelling needs ``submit`` (as ``DELETE /v1/jobs/{id}``
does); requeueing needs ``admin``: it gives jobs fresh attempts past their
``max_attempts`` and takes running jobs from their workers, an operator's decision.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from zkq.coordinator import bulk
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.selection import JobFilter
from zkq.frontend.api import api
from zkq.frontend.auth import tenant_view
from zkq.frontend.models import BulkOut, BulkRequest
from zkq.frontend.resources import current as resources

#: jobs acted on under one gate call: well inside its ZK_TIMEOUT under load
CHUNK = 20


@api.route(
    "/v1/jobs/bulk/cancel",
    "POST",
    summary="Cancel the jobs a filter selects, a bounded step per request",
    scope="submit",
    body=BulkRequest,
    ok=(200, BulkOut),
)
def bulk_cancel(body: BulkRequest) -> tuple[Any, ...]:
    return _bulk("cancel", body)


@api.route(
    "/v1/jobs/bulk/requeue",
    "POST",
    summary="Requeue the jobs a filter selects (admin), a bounded step per request",
    scope="admin",
    body=BulkRequest,
    ok=(200, BulkOut),
)
def bulk_requeue(body: BulkRequest) -> tuple[Any, ...]:
    return _bulk("requeue", body)


def _bulk(action: str, body: BulkRequest) -> tuple[Any, ...]:
    tenant, sealed_for = tenant_view(body.tenant)
    chosen = JobFilter.of(
        tenant=tenant, states=body.state, job_type=body.type, since=body.since, until=body.until
    )
    if not chosen.narrows:
        raise InvalidInput(
            "give at least one of type, state, since or until: a bulk action over every "
            "job is refused"
        )
    res = resources()
    sealer = res.mysql.secrets.cursors()
    after = sealer.open(sealed_for, body.cursor) if body.cursor else None
    config = current_app.config
    done = bulk.step(
        bulk.BulkAction(res.zk.store, action, chosen),
        after,
        body.limit,
        budget=int(config["LIST_SCAN_BUDGET"]),
        bound=res.zk.call,
        work_seconds=float(config["ZK_TIMEOUT"]),
        dry_run=body.dry_run,
        chunk_size=CHUNK,
    )
    tally = done.tally
    out = BulkOut(
        action="cancel" if action == "cancel" else "requeue",
        dry_run=body.dry_run,
        matched=done.matched,
        done=tally.done,
        skipped=tally.skipped,
        failed=tally.failed,
        errors=tally.errors,
        next_cursor=sealer.seal(sealed_for, done.next) if done.next else None,
    )
    return out, 200

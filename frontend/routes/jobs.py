"""``/v1/jobs``: submit (one or a batch), read (with long-poll), cancel, list.

Every job belongs to the tenant of the key that submitted it; another tenant's job is a
404, exactly like a job that does not exist, so ids cannot be probed.  A job pruned from
ZooKeeper is read from the MySQL archive.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import current_app, g, request

from zkq.coordinator.census import Reader
from zkq.coordinator.errors import InvalidInput, InvalidTransition, JobNotFound
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import Job
from zkq.coordinator.listing import scan_jobs
from zkq.coordinator.store import JobSpec
from zkq.frontend import idempotency
from zkq.frontend.api import Header, api
from zkq.frontend.auth import current_key
from zkq.frontend.models import (
    BatchOut,
    BatchSubmission,
    JobOut,
    JobPage,
    JobQuery,
    JobSubmission,
    ListQuery,
)
from zkq.frontend.resources import current as resources

IDEMPOTENCY = Header(
    idempotency.HEADER,
    "Any unique string (a UUID): sending the same request again with the same key, to "
    "any frontend, returns the jobs made the first time instead of new ones.",
)


def _own(job: Job) -> Job:
    """The job if the caller's tenant owns it; otherwise it does not exist for them."""
    if job.tenant != current_key().tenant:
        raise JobNotFound(job.id)
    return job


def _specs(bodies: Sequence[JobSubmission], ids: Sequence[str]) -> list[JobSpec]:
    tenant = current_key().tenant
    specs = [
        JobSpec(
            type=b.type,
            payload=b.payload,
            priority=b.priority,
            max_attempts=b.max_attempts,
            timeout=b.timeout,
            job_id=job_id,
            tenant=tenant,
        )
        for b, job_id in zip(bodies, ids, strict=True)
    ]
    # The coordinator's own checks (payload size above all) before anything is written,
    # so that a batch names the job at fault and no idempotency key is spent on it.
    limits = resources().zk.config.limits
    now = time.time()
    for index, spec in enumerate(specs):
        try:
            spec.to_job(now, limits)
        except InvalidInput as exc:
            where = f"jobs[{index}]: " if len(specs) > 1 else ""
            raise type(exc)(f"{where}{exc}") from None
    return specs


def _submit(bodies: Sequence[JobSubmission], endpoint: str) -> tuple[list[Job], bool]:
    """Write the jobs (or find them, on an idempotent retry); returns (jobs, replayed)."""
    res = resources()
    ids = [new_job_id() for _ in bodies]
    specs = _specs(bodies, ids)
    key = request.headers.get(idempotency.HEADER)
    replay = False
    if key is not None:
        digest = idempotency.request_hash(endpoint, [b.model_dump() for b in bodies])
        claim = res.mysql.idempotency.claim(
            current_key().tenant, idempotency.check_key(key), digest, ids
        )
        if claim.replay:
            replay = True
            specs = _specs(bodies, claim.job_ids)
    found: dict[str, Job] = {}
    with res.zk.call() as deadline:
        if replay:
            found = _existing([s.job_id or "" for s in specs], deadline)
        missing = [s for s in specs if s.job_id not in found]
        if missing:
            for job in res.zk.store.submit_many(missing, deadline):
                found[job.id] = job
    return [found[s.job_id or ""] for s in specs], replay


def _existing(job_ids: list[str], deadline: float) -> dict[str, Job]:
    """Jobs already made under an idempotency key: in ZooKeeper, else in the archive
    (which the pruner fills *before* it deletes, so a job is always in one of them)."""
    res = resources()
    layout = res.zk.session.settings.layout
    records = Reader(res.zk.session, deadline).data([layout.job(i) for i in job_ids])
    found = {
        i: Job.from_bytes(records[layout.job(i)][0]) for i in job_ids if layout.job(i) in records
    }
    for job_id in job_ids:
        if job_id not in found:
            archived = res.mysql.archive.get(job_id)
            if archived is not None:
                found[job_id] = archived
    return found


@api.route(
    "/v1/jobs",
    "POST",
    summary="Submit a job",
    scope="submit",
    body=JobSubmission,
    ok=(201, JobOut),
    errors=(409,),
    headers=(IDEMPOTENCY,),
    response_headers={"Location": "The job's URL", "Idempotent-Replayed": "true on a replay"},
)
def submit_job(body: JobSubmission) -> tuple[Any, ...]:
    [job], replay = _submit([body], "POST /v1/jobs")
    g.job_id = job.id
    headers = {"Location": f"/v1/jobs/{job.id}"}
    if replay:
        headers["Idempotent-Replayed"] = "true"
    return JobOut.of(job), 201, headers


@api.route(
    "/v1/jobs/batch",
    "POST",
    summary="Submit up to 1,000 jobs at once",
    scope="submit",
    body=BatchSubmission,
    ok=(201, BatchOut),
    errors=(409,),
    headers=(IDEMPOTENCY,),
    response_headers={"Idempotent-Replayed": "true on a replay"},
)
def submit_batch(body: BatchSubmission) -> tuple[Any, ...]:
    limit = int(current_app.config["MAX_BATCH"])
    if len(body.jobs) > limit:
        raise InvalidInput(f"at most {limit} jobs per batch, not {len(body.jobs)}")
    jobs, replay = _submit(body.jobs, "POST /v1/jobs/batch")
    headers = {"Idempotent-Replayed": "true"} if replay else {}
    return BatchOut(jobs=[JobOut.of(j) for j in jobs]), 201, headers


def _read(job_id: str) -> Job:
    """The job from ZooKeeper, or from the archive once pruned; the caller's own only."""
    res = resources()
    try:
        with res.zk.call() as deadline:
            job = res.zk.store.get(job_id, deadline)
    except JobNotFound:
        archived = res.mysql.archive.get(job_id)
        if archived is None:
            raise
        job = archived
    return _own(job)


@api.route(
    "/v1/jobs/{job_id}",
    "GET",
    summary="Read a job; with ?wait=SECONDS, wait for it to end (long-poll)",
    scope="read",
    query=JobQuery,
    ok=(200, JobOut),
)
def get_job(job_id: str, query: JobQuery) -> tuple[Any, ...]:
    g.job_id = job_id
    job = _read(job_id)  # ownership first: nobody waits on another tenant's job
    wait = min(query.wait or 0.0, float(current_app.config["MAX_WAIT"]))
    if wait > 0 and not job.terminal:
        try:
            job = resources().zk.wait_job(job_id, wait)
        except JobNotFound:
            job = _read(job_id)  # pruned while we waited (it ended long enough ago)
    return JobOut.of(job), 200


@api.route(
    "/v1/jobs/{job_id}",
    "DELETE",
    summary="Cancel a job that has not ended",
    scope="submit",
    ok=(200, JobOut),
    errors=(409,),
)
def cancel_job(job_id: str) -> tuple[Any, ...]:
    g.job_id = job_id
    job = _read(job_id)
    if job.terminal:
        raise InvalidTransition(
            f"job {job_id} is {job.state}; only jobs not ended can be cancelled"
        )
    res = resources()
    with res.zk.call() as deadline:
        return JobOut.of(res.zk.store.cancel(job_id, deadline)), 200


@api.route(
    "/v1/jobs",
    "GET",
    summary="List your jobs, oldest first, a page at a time",
    scope="read",
    query=ListQuery,
    ok=(200, JobPage),
    errors=(400,),
)
def list_jobs(query: ListQuery) -> tuple[Any, ...]:
    """Merges live jobs (ZooKeeper) and archived ones (MySQL) by id.

    Each source reads at most a bounded amount and says how far it got; the page stops at
    the nearer of the two, so the cursor (the last id handed out, or the point a source
    stopped at) never skips a job of either.
    """
    res = resources()
    tenant = current_key().tenant

    def match(job: Job) -> bool:
        return (
            job.tenant == tenant
            and (query.state is None or job.state == query.state)
            and (query.type is None or job.type == query.type)
        )

    with res.zk.call() as deadline:
        scan = scan_jobs(
            res.zk.session,
            query.cursor,
            query.limit,
            match,
            deadline,
            budget=int(current_app.config["LIST_SCAN_BUDGET"]),
        )
    archived = res.mysql.archive.list(
        tenant=tenant, state=query.state, type=query.type, after_id=query.cursor, limit=query.limit
    )
    bounds = [b for b in (None if scan.exhausted else scan.last,) if b is not None]
    if len(archived) >= query.limit:
        bounds.append(archived[-1].id)
    bound = min(bounds) if bounds else None
    merged = {j.id: j for j in archived}
    merged.update({j.id: j for j in scan.jobs})  # the live record is the newer one
    ids = sorted(i for i in merged if bound is None or i <= bound)
    page = ids[: query.limit]
    if len(ids) > query.limit:
        cursor: str | None = page[-1]
    else:
        cursor = bound
    return JobPage(jobs=[JobOut.of(merged[i]) for i in page], next_cursor=cursor), 200

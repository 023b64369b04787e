"""``/v1/jobs``: submit (one or a batch), read (with long-poll), cancel, list.

Every job belongs to the tenant of the key that submitted it; another tenant's job is a
404, exactly like a job that does not exist, so ids cannot be probed.  Admin keys (scope
``admin``) are the operators': they read, long-poll, list and cancel every tenant's jobs,
the CLI's and ``zkq.Client``'s included, and see each job's ``tenant``.  Jobs are read
through :class:`~zkq.coordinator.lookup.JobLookup`: from ZooKeeper, or from the MySQL
archive once pruned.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from flask import current_app, g, request

from zkq.coordinator.errors import (
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    ZkqError,
)
from zkq.coordinator.ids import new_job_id
from zkq.coordinator.job import Job, JobSpec
from zkq.coordinator.selection import JobFilter
from zkq.coordinator.serving import unserved_warning
from zkq.frontend import auth, idempotency
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
    SubmittedJob,
)
from zkq.frontend.resources import current as resources
from zkq.frontend.timing_models import retry_dict

log = logging.getLogger(__name__)

IDEMPOTENCY = Header(
    idempotency.HEADER,
    "Any unique string (a UUID): sending the same request again with the same key, to "
    "any frontend, returns the jobs made the first time instead of new ones.",
)
WARNING_HEADER = "Zkq-Warning"
#: at most this many warnings in the header (the body has them all): a batch of a thousand
#: new types must not make a response head larger than HAProxy's buffer
HEADER_WARNINGS = 3
SUBMIT_HEADERS = {
    "Idempotent-Replayed": "true on a replay",
    WARNING_HEADER: "The response's `warnings`, joined by `; ` (the first few); absent "
    "when there are none",
}


def _own(job: Job) -> Job:
    """The job if the caller's tenant owns it (or the caller is an admin); otherwise it
    does not exist for them."""
    if job.tenant != current_key().tenant and not auth.is_admin():
        raise JobNotFound(job.id)
    return job


def _out(job: Job) -> JobOut:
    return JobOut.of(job, show_tenant=auth.is_admin())


def _specs(
    bodies: Sequence[JobSubmission], ids: Sequence[str], recorded: bool = False
) -> list[JobSpec]:
    """``recorded``: the ids are an Idempotency-Key's, chosen when the key was first
    used (perhaps hours ago), not made now."""
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
            id_recorded=recorded,
            run_at=b.run_at,
            delay=b.delay,
            retry=retry_dict(b.retry),
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
    if key is not None:
        key = idempotency.check_key(key)
    elif auth.enabled():  # (ZKQ_AUTH=off, a benchmark's, keeps MySQL off the path)
        # HAProxy's id of this request: its re-sends must not make new jobs
        key = idempotency.implicit_key(request.headers.get(idempotency.REQUEST_ID))
    replay = False
    if key is not None:
        digest = idempotency.request_hash(endpoint, [idempotency.hashed(b) for b in bodies])
        claim = res.mysql.idempotency.claim(current_key().tenant, key, digest, ids)
        if claim.replay:
            replay = True
            specs = _specs(bodies, claim.job_ids, recorded=True)
    if auth.enabled():
        # before anything is written to ZooKeeper, and after the key is claimed: a
        # malformed or reused key spends no type slot, and a refused type leaves only the
        # key, whose retry (once the cap is raised) replays the same ids
        res.mysql.job_types.admit(current_key().tenant, {s.type for s in specs})
    # a replay looks the jobs up first, in the archive too, so a job that ran and was
    # pruned long ago is not submitted a second time
    found = res.jobs.get_many([s.job_id or "" for s in specs]) if replay else {}
    missing = [s for s in specs if s.job_id not in found]
    if missing:
        with res.zk.call() as deadline:
            for job in res.zk.store.submit_many(missing, deadline):
                found[job.id] = job
        _fault_exit_after_commit()
    return [found[s.job_id or ""] for s in specs], replay


def _warnings(jobs: Sequence[Job]) -> tuple[list[str], dict[str, str]]:
    """The submission's warnings, and the headers that carry them: one per type of these
    jobs that no live worker serves.  Read from this process's cached set
    (:mod:`zkq.frontend.served`); when that cannot be read in time, no warning (the jobs
    are in, and the answer must not wait on it)."""
    try:
        zk = resources().zk
        with zk.call(timeout=1.0) as deadline:
            served = zk.served.types(deadline)
    except ZkqError as exc:
        log.info("cannot tell which job types the workers serve: %s", exc)
        return [], {}
    found = [unserved_warning(t) for t in sorted({j.type for j in jobs} - served)]
    if not found:
        return [], {}
    shown = "; ".join(found[:HEADER_WARNINGS])
    if len(found) > HEADER_WARNINGS:
        shown += f"; and {len(found) - HEADER_WARNINGS} more in the body's warnings"
    return found, {WARNING_HEADER: shown}


def _fault_exit_after_commit() -> None:
    """A fault point for tests, off unless ``ZKQ_FAULT_EXIT_AFTER_SUBMIT`` names a marker
    file: the first submission to find no marker creates it and ends this worker process
    before answering, as a frontend dying between the commit and its response does.  The
    marker makes it happen once across all the frontends that share it."""
    marker = current_app.config.get("FAULT_EXIT_AFTER_SUBMIT")
    if not marker:
        return
    try:
        os.close(os.open(str(marker), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(1)


@api.route(
    "/v1/jobs",
    "POST",
    summary="Submit a job",
    scope="submit",
    body=JobSubmission,
    ok=(201, SubmittedJob),
    errors=(409,),
    headers=(IDEMPOTENCY,),
    response_headers={"Location": "The job's URL", **SUBMIT_HEADERS},
)
def submit_job(body: JobSubmission) -> tuple[Any, ...]:
    [job], replay = _submit([body], "POST /v1/jobs")
    g.job_id = job.id
    warnings, headers = _warnings([job])
    headers["Location"] = f"/v1/jobs/{job.id}"
    if replay:
        headers["Idempotent-Replayed"] = "true"
    return (
        SubmittedJob.of(job, show_tenant=auth.is_admin()).model_copy(update={"warnings": warnings}),
        201,
        headers,
    )


@api.route(
    "/v1/jobs/batch",
    "POST",
    summary="Submit up to 1,000 jobs at once",
    scope="submit",
    body=BatchSubmission,
    ok=(201, BatchOut),
    errors=(409,),
    headers=(IDEMPOTENCY,),
    response_headers=SUBMIT_HEADERS,
)
def submit_batch(body: BatchSubmission) -> tuple[Any, ...]:
    limit = int(current_app.config["MAX_BATCH"])
    if len(body.jobs) > limit:
        raise InvalidInput(f"at most {limit} jobs per batch, not {len(body.jobs)}")
    jobs, replay = _submit(body.jobs, "POST /v1/jobs/batch")
    warnings, headers = _warnings(jobs)
    if replay:
        headers["Idempotent-Replayed"] = "true"
    return BatchOut(jobs=[_out(j) for j in jobs], warnings=warnings), 201, headers


def _read(job_id: str) -> Job:
    """The job, live or archived; the caller's own only."""
    return _own(resources().jobs.get(job_id))


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
    return _out(job), 200


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
        return _out(res.zk.store.cancel(job_id, deadline)), 200


@api.route(
    "/v1/jobs",
    "GET",
    summary="List your jobs, oldest (or newest) first, a page at a time",
    scope="read",
    query=ListQuery,
    ok=(200, JobPage),
    errors=(400,),
)
def list_jobs(query: ListQuery) -> tuple[Any, ...]:
    """Live jobs (ZooKeeper) and archived ones (MySQL) merged by id; the cursor is
    :class:`~zkq.coordinator.lookup.Page`'s, which never skips a job of either, sealed for
    the tenant (:mod:`zkq.frontend.cursors`): it may be another tenant's job id."""
    tenant, sealed_for = auth.tenant_view(query.tenant)
    window = JobFilter.of(since=query.since, until=query.until).id_range()
    sealer = resources().mysql.secrets.cursors()
    page = resources().jobs.page(
        sealer.open(sealed_for, query.cursor) if query.cursor else None,
        query.limit,
        tenant=tenant,
        state=query.state,
        job_type=query.type,
        budget=int(current_app.config["LIST_SCAN_BUDGET"]),
        newest=query.order == "newest",
        window=window,
    )
    cursor = sealer.seal(sealed_for, page.next_cursor) if page.next_cursor else None
    return JobPage(jobs=[_out(j) for j in page.jobs], next_cursor=cursor), 200

"""The API's request and response bodies: pydantic v2 models that both validate requests
and generate the OpenAPI document (:mod:`zkq.frontend.openapi`), so the two cannot disagree.

Request bodies are strict (no "5" for 5, no true for 1) and refuse unknown fields: a typo
in a field name is an error, not a silently ignored option.  Query strings are text by
nature, so their models convert ("?limit=10") but still refuse unknown parameters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from zkq.coordinator.job import MAX_ATTEMPTS_LIMIT, MAX_TIMEOUT_SECONDS, Job, JobState
from zkq.coordinator.paths import PRIORITY_MAX, PRIORITY_MIN
from zkq.coordinator.validation import JOB_TYPE_MAX, JOB_TYPE_PATTERN
from zkq.frontend.keys import TENANT_MAX
from zkq.frontend.timing_models import DELAY, RetryPolicy, RunAt

#: a ULID, as :func:`zkq.coordinator.ids.validate_job_id` checks it
JOB_ID_PATTERN = r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
MAX_BATCH = 1000

JobId = Annotated[str, StringConstraints(pattern=JOB_ID_PATTERN)]
#: an opaque list cursor (frontend/cursors.py): base64url, unpadded
Cursor = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
]
JobType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=JOB_TYPE_MAX, pattern=JOB_TYPE_PATTERN),
]


def _whole(value: Any) -> Any:
    """58.0 as 58: JSON has one number type, and JSON Schema (so the OpenAPI document)
    calls a number with no fraction an ``integer``.  58.5, "58" and true stay errors."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: an integer field of a strict body that also takes a whole float (58.0)
WholeInt = Annotated[int, BeforeValidator(_whole)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ---------------------------------------------------------------------------------
class JobSubmission(_Strict):
    """One job to run."""

    type: JobType = Field(description="The handler that runs it, e.g. `resize`.")
    payload: Any = Field(None, description="Any JSON; at most the payload limit (64 KiB).")
    priority: WholeInt = Field(
        0, ge=PRIORITY_MIN, le=PRIORITY_MAX, description="Higher runs first."
    )
    max_attempts: WholeInt = Field(1, ge=1, le=MAX_ATTEMPTS_LIMIT, description="Tries before dead.")
    timeout: float = Field(
        300.0, gt=0, le=MAX_TIMEOUT_SECONDS, description="Seconds one attempt may run."
    )
    run_at: RunAt | None = None
    delay: float | None = DELAY
    retry: RetryPolicy | None = None

    @model_validator(mode="after")
    def _one_time(self) -> JobSubmission:
        if self.run_at is not None and self.delay is not None:
            raise ValueError("give run_at or delay, not both")
        return self


class BatchSubmission(_Strict):
    """Up to 1,000 jobs, written in as few ZooKeeper transactions as fit."""

    jobs: list[JobSubmission] = Field(min_length=1, max_length=MAX_BATCH)


class JobQuery(_Query):
    wait: float | None = Field(
        None,
        ge=0,
        description="Long-poll: seconds to wait for the job to end (capped by the server).",
    )


#: a time as `since`/`until` take it (zkq.coordinator.selection.parse_when)
WHEN = (
    "A duration ago (`10m`, `2h`, `1d`), an ISO-8601 time (`2026-12-03T14:00:00Z`; UTC "
    "when it names no zone) or Unix seconds; compared with the job's creation time."
)


class ListQuery(_Query):
    state: JobState | None = None
    type: JobType | None = None
    limit: int = Field(100, ge=1, le=1000)
    cursor: Cursor | None = Field(None, description="`next_cursor` of the previous page.")
    order: Literal["oldest", "newest"] = Field(
        "oldest", description="`oldest` first (the default) or `newest` first."
    )
    since: str | None = Field(None, max_length=64, description="Created at or after: " + WHEN)
    until: str | None = Field(None, max_length=64, description="Created before: " + WHEN)
    tenant: str | None = Field(
        None,
        min_length=1,
        max_length=TENANT_MAX,
        description="Admin keys: only this tenant's jobs (by default every tenant's). "
        "Other keys list their own tenant's jobs only (another tenant here is a 403).",
    )


StateName = Literal[
    "scheduled", "pending", "assigned", "running", "succeeded", "failed", "dead", "cancelled"
]


class BulkRequest(_Strict):
    """Which jobs a bulk cancel or requeue acts on, and how much of it one request does."""

    type: JobType | None = Field(None, description="Only jobs of this type.")
    state: list[StateName] = Field(
        [], max_length=8, description="Only jobs in one of these states (empty: any)."
    )
    since: str | float | None = Field(None, description="Created at or after: " + WHEN)
    until: str | float | None = Field(None, description="Created before: " + WHEN)
    tenant: str | None = Field(
        None,
        max_length=TENANT_MAX,
        description="Admin keys only: only this tenant's jobs (default: every tenant's).  "
        "Other keys act on their own tenant's jobs alone.",
    )
    dry_run: bool = Field(False, description="Count the jobs, act on none.")
    limit: WholeInt = Field(500, ge=1, le=1000, description="Jobs acted on at most.")
    cursor: Cursor | None = Field(
        None, description="`next_cursor` of the previous response: go on from there."
    )


# -- responses --------------------------------------------------------------------------------
class AttemptOut(BaseModel):
    """An entry of a job's history: an attempt, or the job sent back to the queue."""

    number: int | None = Field(
        description="The attempt's number: 1, 2, ... never repeated; null for a requeue."
    )
    worker: str
    started_at: float = Field(description="When it started; for a requeue, when it happened.")
    ended_at: float | None = None
    outcome: str | None = None
    error: str | None = Field(None, description="What failed; for a requeue, why.")
    kind: str = Field("attempt", description="`attempt`, or `requeue`: sent back to the queue.")
    by: str | None = Field(None, description="Who requeued it: `operator`, `leader` or `worker`.")


def _unset(value: Any) -> bool:
    # fields a record has only when used: absent, as in the record, rather than null
    return value is None


class JobOut(BaseModel):
    id: JobId
    type: str
    state: JobState
    payload: Any = None
    priority: int
    max_attempts: int
    timeout: float
    attempts: int
    worker: str | None = None
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: dict[str, str] | None = None
    history: list[AttemptOut] = []
    parent: str | None = None
    children: list[str] = []
    run_at: float | None = Field(
        None, exclude_if=_unset, description="When it is (or was) due, epoch seconds."
    )
    scheduled_for: str | None = Field(
        None,
        exclude_if=_unset,
        description="Why it waited `scheduled`: `delay` (submitted for later), `retry` (a "
        "backoff) or `schedule` (a periodic schedule).",
    )
    retry: dict[str, Any] | None = Field(
        None, exclude_if=_unset, description="Its retry policy, as submitted."
    )
    schedule: dict[str, Any] | None = Field(
        None, exclude_if=_unset, description="The periodic schedule that made it."
    )
    lane: str | None = Field(None, exclude_if=_unset, description="`short` or `long`.")
    tenant: str | None = Field(
        None,
        # absent, not null, for the other keys: their own tenant is nothing to tell
        exclude_if=lambda value: value is None,
        description="Whose job it is: given to admin keys only, which read every tenant's "
        "jobs (other keys read their own tenant's alone).",
    )

    @classmethod
    def of(cls, job: Job, show_tenant: bool = False) -> JobOut:
        data = job.to_dict()
        if not show_tenant:
            data.pop("tenant", None)  # the caller's own tenant: nothing to tell
        data.pop("schema", None)
        return cls.model_validate(data)


#: what ``warnings`` says, on a submission's response
WARNINGS_DESCRIPTION = (
    "What the submission should know though it succeeded, for people: e.g. that no live "
    "worker serves a job's type, so the job waits until one does.  Empty when all is well; "
    "also sent as the `Zkq-Warning` header."
)


class SubmittedJob(JobOut):
    """The job as submitted, with what the submission should know."""

    warnings: list[str] = Field([], description=WARNINGS_DESCRIPTION)


class BatchOut(BaseModel):
    jobs: list[JobOut]
    warnings: list[str] = Field([], description=WARNINGS_DESCRIPTION)


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: Cursor | None = Field(
        None,
        description="Pass as `cursor` for the next page; null at the end.  Opaque, and "
        "good for the same tenant only.",
    )


class BulkOut(BaseModel):
    action: Literal["cancel", "requeue"]
    dry_run: bool
    matched: int = Field(description="Jobs selected in this step (counted, for a dry run).")
    done: int = Field(description="Cancelled or requeued.")
    skipped: int = Field(description="Ended or changed between the selection and the write.")
    failed: int
    errors: list[str] = Field([], description="The first few failures, for people.")
    next_cursor: Cursor | None = Field(
        None,
        description="More jobs may match: send the same request with this `cursor`.  null: "
        "done.  Newest first, so jobs submitted meanwhile are not selected.",
    )


class WorkerOut(BaseModel):
    id: str
    host: str | None = None
    pid: int | None = None
    types: list[str] = []
    slots: int = 0
    busy: int = Field(description="Jobs in the worker's inbox (assigned or running).")
    pool: str | None = None
    draining: bool = False
    lost_slots: int = Field(
        0, description="Slots whose revoked handler could not be stopped: not assigned to."
    )
    started_at: float | None = None
    session: str


class WorkerList(BaseModel):
    workers: list[WorkerOut]


class QueueOut(BaseModel):
    type: str
    depth: int = Field(description="Pending jobs.")
    oldest_age_seconds: float | None = Field(description="Age of the oldest pending job.")
    running: int
    paused: bool


class QueueList(BaseModel):
    queues: list[QueueOut]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    zookeeper: bool
    mysql: bool


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: e.g. `job_not_found`.")
    message: str = Field(description="What went wrong and what to do, for people.")


class ErrorBody(BaseModel):
    error: ErrorDetail

"""The job record: a piece of data fetched again, not a live object.

A record is JSON stored in ``jobs/<era>/<tick>/<id>``.  Its ``state`` is a string enum with
one table of allowed transitions (:data:`TRANSITIONS`); the functions of
:mod:`zkq.coordinator.lifecycle` are the only writers, and each checks that table before it
builds its transaction.  The znode's version, not anything in the JSON, is the fencing
token.  What a submitter asks for is a :class:`JobSpec`; :meth:`JobSpec.to_job` checks it
and makes the record it becomes.

Terminal states and what they mean:

- ``succeeded``: a handler returned; ``result`` holds what it returned.
- ``failed``: the handler raised and the job asked for no retry (``max_attempts`` 1).
- ``dead``: the job was retried and every attempt was spent (handler errors, lost workers
  or timeouts); the last error is kept.  A dead letter for an operator to look at.
- ``cancelled``: somebody cancelled it before it ended.

A job that waits for its time is ``scheduled``: submitted with ``run_at``/``delay``, or a
retry waiting out its backoff (``scheduled_for`` says which).  It is not terminal; the
leader promotes it to ``pending`` once its ``run_at`` has passed on the leader's clock.

Terminal means that nothing in zkq moves the job on by itself; an operator may still send a
failed, dead or cancelled job back to ``pending`` (``zkq requeue``), with fresh attempts.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.errors import InvalidInput, InvalidTransition
from zkq.coordinator.history import (
    ATTEMPT,
    HISTORY_LIMIT,
    MESSAGE_LIMIT,
    REQUEUE,
    TRACEBACK_LIMIT,
    Attempt,
    AttemptOutcome,
    bounded_history,
    short,
    truncate_traceback,
)
from zkq.coordinator.ids import id_time, new_job_id, validate_job_id
from zkq.coordinator.validation import check_job_type, check_sized_json

#: the newest record schema this zkq reads.  A record is *written* as schema 1 unless it
#: uses a field or state a zkq before schema 2 would misread (:data:`SCHEMA_2_FIELDS`,
#: ``scheduled``): such a zkq then sets the record aside instead of mishandling it
SCHEMA_VERSION = 2
#: optional fields that came with schema 2; a record carries them only when set
SCHEMA_2_FIELDS = ("run_at", "scheduled_for", "retry", "schedule", "lane")
#: how far ahead a job may be scheduled
MAX_SCHEDULE_AHEAD = 366 * 24 * 3600.0
#: a job's attempts, and so its history entries, are bounded alike
MAX_ATTEMPTS_LIMIT = HISTORY_LIMIT
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
#: how far from now a submitter's own job id may be dated (its clock may be off a little)
ID_CLOCK_SKEW = 300.0


class JobState(enum.StrEnum):
    SCHEDULED = "scheduled"
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD, JobState.CANCELLED}
)

#: the one table of allowed transitions
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    # promoted once due, or cancelled while it waits
    JobState.SCHEDULED: frozenset({JobState.PENDING, JobState.CANCELLED}),
    JobState.PENDING: frozenset({JobState.ASSIGNED, JobState.CANCELLED}),
    # an assigned job goes back to pending when its worker dies before starting it
    JobState.ASSIGNED: frozenset({JobState.RUNNING, JobState.PENDING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.DEAD,
            JobState.PENDING,  # retry after an error, or requeue of a lost/overdue attempt
            JobState.SCHEDULED,  # a retry that waits out its backoff
            JobState.CANCELLED,
        }
    ),
    JobState.SUCCEEDED: frozenset(),
    # an operator may send an unsuccessful job back to the queue (``zkq requeue``)
    # (or to a time: ``zkq requeue --at``)
    JobState.FAILED: frozenset({JobState.PENDING, JobState.SCHEDULED}),
    JobState.DEAD: frozenset({JobState.PENDING, JobState.SCHEDULED}),
    JobState.CANCELLED: frozenset({JobState.PENDING, JobState.SCHEDULED}),
}


def check_transition(job: Job, to: JobState) -> None:
    if to not in TRANSITIONS[job.state]:
        raise InvalidTransition(f"job {job.id} is {job.state}; it cannot become {to}")


@dataclass(frozen=True)
class Limits:
    """Size limits on what a record carries; always well under ZooKeeper's 1 MB."""

    payload_bytes: int = 64 * 1024
    result_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in ("payload_bytes", "result_bytes"):
            value = getattr(self, name)
            if not 0 < value <= 256 * 1024:
                raise ValueError(f"{name} must be between 1 and 262144 bytes, not {value}")


@dataclass(frozen=True)
class Job:
    id: str
    type: str
    payload: Any = None
    priority: int = 0
    max_attempts: int = 1
    timeout: float = 300.0
    state: JobState = JobState.PENDING
    attempts: int = 0
    worker: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    result: Any = None
    error: dict[str, str] | None = None
    history: tuple[Attempt, ...] = ()
    parent: str | None = None
    children: tuple[str, ...] = ()
    tenant: str | None = None
    schema: int = 1
    #: epoch seconds the job is due (``run_at``/``delay``, or a retry's backoff); kept after
    #: it is promoted, so lateness can be measured
    run_at: float | None = None
    #: why it waited: ``delay`` (submitted for later), ``retry`` (a backoff) or ``schedule``
    scheduled_for: str | None = None
    #: the retry policy (:mod:`zkq.coordinator.backoff`); None: retries are immediate
    retry: dict[str, Any] | None = None
    #: the periodic schedule that made it: ``{"owner", "name", "tick"}``
    schedule: dict[str, Any] | None = None
    #: the lane the leader placed it in (``short``/``long``), for operators
    lane: str | None = None

    # -- derived --------------------------------------------------------------------------
    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def attempt_number(self) -> int:
        """The number of the latest attempt in the history (0 before the first): the next
        one is numbered one more, whatever ``attempts`` says."""
        return max((a.number for a in self.history if a.number is not None), default=0)

    def tries(self) -> tuple[Attempt, ...]:
        """The history's attempts, without its requeue entries."""
        return tuple(a for a in self.history if a.is_attempt)

    def replace(self, **changes: Any) -> Job:
        return dataclasses.replace(self, **changes)

    def spec(self) -> dict[str, Any]:
        """What the submitter asked for: equal specs mean a retried submission.  (Not
        ``run_at``: a replayed ``delay`` is counted from another moment.)"""
        out = {
            "type": self.type,
            "payload": self.payload,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "parent": self.parent,
            "tenant": self.tenant,
        }
        if self.retry is not None:
            out["retry"] = self.retry
        return out

    @property
    def needs_schema_2(self) -> bool:
        return self.state == JobState.SCHEDULED or any(
            getattr(self, name) is not None for name in SCHEMA_2_FIELDS
        )

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = str(self.state)
        data["history"] = [a.to_dict() for a in self.history]
        data["children"] = list(self.children)
        for name in SCHEMA_2_FIELDS:
            if data[name] is None:
                del data[name]  # a record that uses none of them reads as it always did
        data["schema"] = 2 if self.needs_schema_2 else 1
        return data

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        schema = data.get("schema", SCHEMA_VERSION)
        if schema > SCHEMA_VERSION:
            raise InvalidInput(
                f"job record schema {schema} is newer than this zkq understands "
                f"({SCHEMA_VERSION}): upgrade zkq"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["state"] = JobState(values.get("state", JobState.PENDING))
        values["history"] = tuple(Attempt.from_dict(a) for a in values.get("history", ()))
        values["children"] = tuple(values.get("children", ()))
        return cls(**values)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Job:
        """Raises :class:`InvalidInput` for a newer schema and ``ValueError`` for bytes that
        are no record (damage): readers that set unreadable records aside catch these, so
        JSON of the wrong shape must not escape as an ``AttributeError`` from deep inside
        (one such record used to fail every dispatch round that read it)."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError(f"a job record is a JSON object, not {type(data).__name__}")
        try:
            return cls.from_dict(data)
        except (AttributeError, TypeError, KeyError) as exc:
            # a field of the wrong shape, as "history": [1], "children": 5, "schema": "2"
            raise ValueError(f"damaged job record: {exc!r}") from None


@dataclass(frozen=True)
class JobSpec:
    """What a submitter asks for; :meth:`to_job` makes the record it becomes, choosing the
    id when none is given."""

    type: str
    payload: Any = None
    priority: int = 0
    max_attempts: int = 1
    timeout: float = 300.0
    job_id: str | None = None
    tenant: str | None = None
    parent: str | None = None
    #: the id was chosen when this submission was first accepted and recorded (an
    #: Idempotency-Key's ids): a replay may come at any age within the key's retention, so
    #: the id's date is not held against ``now``; its bucket is the one it was given then
    id_recorded: bool = False
    #: when to run it: epoch seconds (``run_at``) or seconds from now (``delay``), not both
    run_at: float | None = None
    delay: float | None = None
    #: the retry policy, as :meth:`zkq.coordinator.backoff.Backoff.to_dict` spells it
    retry: dict[str, Any] | None = None

    def to_job(self, now: float, limits: Limits) -> Job:
        """The record: ``pending``, or ``scheduled`` when it is due later than ``now`` (the
        submitter's clock turns a ``delay`` into ``run_at``; the leader's alone decides when
        a ``run_at`` has come)."""
        validate_spec(self.type, self.priority, self.max_attempts, self.timeout)
        check_payload(self.payload, limits)
        run_at = due_time(self.run_at, self.delay, now)
        retry = check_retry(self.retry)
        later = run_at is not None and run_at > now
        job_id = new_job_id()
        if self.job_id:
            job_id = validate_job_id(self.job_id)
            if not self.id_recorded and abs(id_time(job_id) - now) > ID_CLOCK_SKEW:
                # an id from another era would jump the FIFO order and land in buckets
                # that were pruned long ago (or never will be)
                raise InvalidInput(
                    f"job id {job_id} is dated {id_time(job_id) - now:+.0f}s from now: "
                    "make ids when submitting (a ULID from the current time)"
                )
        return Job(
            id=job_id,
            type=self.type,
            payload=self.payload,
            priority=self.priority,
            max_attempts=self.max_attempts,
            timeout=float(self.timeout),
            created_at=now,
            updated_at=now,
            tenant=self.tenant,
            parent=self.parent,
            state=JobState.SCHEDULED if later else JobState.PENDING,
            run_at=run_at,
            scheduled_for="delay" if later else None,
            retry=retry,
        )


def due_time(run_at: Any, delay: Any, now: float) -> float | None:
    """When a submission is due (epoch seconds), from ``run_at`` or ``delay``; None: now."""
    if run_at is not None and delay is not None:
        raise InvalidInput("give run_at or delay, not both")
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
            raise InvalidInput("delay must be a number of seconds >= 0")
        if delay > MAX_SCHEDULE_AHEAD:
            raise InvalidInput("delay must be at most 366 days (31622400 seconds)")
        return now + float(delay)
    if run_at is None:
        return None
    if (
        isinstance(run_at, bool)
        or not isinstance(run_at, int | float)
        or not 0 <= run_at < float("inf")
    ):
        raise InvalidInput("run_at must be a time in epoch seconds")
    if run_at - now > MAX_SCHEDULE_AHEAD:
        raise InvalidInput("run_at must be at most 366 days from now")
    return float(run_at)


def check_retry(retry: Any) -> dict[str, Any] | None:
    """A submission's retry policy, checked and in its stored form (None: none given)."""
    if retry is None:
        return None
    from zkq.coordinator.backoff import Backoff

    return Backoff.from_dict(retry).to_dict()


def check_payload(payload: Any, limits: Limits) -> None:
    check_sized_json(
        payload,
        limits.payload_bytes,
        "payload",
        "store large data elsewhere and pass a reference",
    )


def check_result(result: Any, limits: Limits) -> None:
    """A handler's result: JSON as :mod:`~zkq.coordinator.validation` defines it, within the
    limit.  Raises :class:`InvalidInput` (the attempt fails with this message)."""
    check_sized_json(
        result,
        limits.result_bytes,
        "result",
        "store large results elsewhere and return a reference",
    )


def validate_spec(job_type: str, priority: int, max_attempts: int, timeout: float) -> None:
    """Reject a job the cluster could not honour, with what to change."""
    check_job_type(job_type)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 999:
        raise InvalidInput("priority must be an integer from 0 (lowest) to 999 (highest)")
    if (
        isinstance(max_attempts, bool)
        or not isinstance(max_attempts, int)
        or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT
    ):
        raise InvalidInput(f"max_attempts must be an integer from 1 to {MAX_ATTEMPTS_LIMIT}")
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_SECONDS
    ):
        raise InvalidInput(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT_SECONDS}]")


__all__ = [
    "ATTEMPT",
    "MESSAGE_LIMIT",
    "REQUEUE",
    "TERMINAL_STATES",
    "TRACEBACK_LIMIT",
    "TRANSITIONS",
    "Attempt",
    "AttemptOutcome",
    "Job",
    "JobSpec",
    "JobState",
    "Limits",
    "bounded_history",
    "check_payload",
    "check_result",
    "check_retry",
    "check_transition",
    "due_time",
    "short",
    "truncate_traceback",
]

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
from zkq.coordinator.ids import id_time, new_job_id, validate_job_id
from zkq.coordinator.validation import as_text, check_job_type, check_sized_json

SCHEMA_VERSION = 1
MAX_ATTEMPTS_LIMIT = 100
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
TRACEBACK_LIMIT = 8 * 1024
MESSAGE_LIMIT = 1024
#: how far from now a submitter's own job id may be dated (its clock may be off a little)
ID_CLOCK_SKEW = 300.0


class JobState(enum.StrEnum):
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
    JobState.PENDING: frozenset({JobState.ASSIGNED, JobState.CANCELLED}),
    # an assigned job goes back to pending when its worker dies before starting it
    JobState.ASSIGNED: frozenset({JobState.RUNNING, JobState.PENDING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.DEAD,
            JobState.PENDING,  # retry after an error, or requeue of a lost/overdue attempt
            JobState.CANCELLED,
        }
    ),
    JobState.SUCCEEDED: frozenset(),
    # an operator may send an unsuccessful job back to the queue (``zkq requeue``)
    JobState.FAILED: frozenset({JobState.PENDING}),
    JobState.DEAD: frozenset({JobState.PENDING}),
    JobState.CANCELLED: frozenset({JobState.PENDING}),
}


def check_transition(job: Job, to: JobState) -> None:
    if to not in TRANSITIONS[job.state]:
        raise InvalidTransition(f"job {job.id} is {job.state}; it cannot become {to}")


class AttemptOutcome(enum.StrEnum):
    """How an attempt ended, as its record keeps it."""

    SUCCEEDED = "succeeded"
    ERROR = "error"  # the handler raised
    LOST = "lost"  # its worker's session ended
    TIMEOUT = "timeout"  # it ran past the job's timeout and was taken back
    CANCELLED = "cancelled"
    REQUEUED = "requeued"  # an operator took it back (costs no attempt); a requeue entry


#: the kinds of :class:`Attempt` entries in a record's ``history``
ATTEMPT = "attempt"
REQUEUE = "requeue"


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
class Attempt:
    """An entry of the record's ``history``, kept for operators: one try at running the job
    (``kind`` ``attempt``), or the job sent back to the queue (``kind`` ``requeue``).

    Attempts are numbered 1, 2, ... over the job's whole life: a number is never given
    twice, across retries, requeues and revivals alike (``attempts`` is another count: the
    tries spent against ``max_attempts``, which a requeue by an operator gives back and a
    revival starts afresh).  A requeue entry has no number; it says who sent the job back
    (``by``: ``operator`` or ``leader``), why (``error``), when (``started_at``, equal to
    ``ended_at``) and from which worker (``worker``, empty if it had none); its outcome is
    ``requeued``.
    """

    number: int | None
    worker: str
    started_at: float
    ended_at: float | None = None
    #: None while it runs; a plain string for an outcome a newer zkq wrote
    outcome: AttemptOutcome | str | None = None
    error: str | None = None
    #: ``attempt`` or ``requeue`` (records written before requeue entries hold attempts only)
    kind: str = ATTEMPT
    #: of a requeue entry: who sent the job back, ``operator`` or ``leader``
    by: str | None = None

    @classmethod
    def requeue(cls, worker: str | None, by: str, reason: str, now: float) -> Attempt:
        return cls(
            number=None,
            worker=worker or "",
            started_at=now,
            ended_at=now,
            outcome=AttemptOutcome.REQUEUED,
            error=short(reason),
            kind=REQUEUE,
            by=by,
        )

    @property
    def is_attempt(self) -> bool:
        return self.kind == ATTEMPT

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["outcome"] = None if self.outcome is None else str(self.outcome)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        outcome = values.get("outcome")
        if outcome is not None:
            # an outcome this zkq does not know (written by a newer one) is kept as its
            # string: one attempt's label must not make the whole record unreadable
            try:
                values["outcome"] = AttemptOutcome(outcome)
            except ValueError:
                values["outcome"] = str(outcome)
        return cls(**values)


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
    schema: int = SCHEMA_VERSION

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
        """What the submitter asked for: equal specs mean a retried submission."""
        return {
            "type": self.type,
            "payload": self.payload,
            "priority": self.priority,
            "max_attempts": self.max_attempts,
            "timeout": self.timeout,
            "parent": self.parent,
            "tenant": self.tenant,
        }

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = str(self.state)
        data["history"] = [a.to_dict() for a in self.history]
        data["children"] = list(self.children)
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

    def to_job(self, now: float, limits: Limits) -> Job:
        validate_spec(self.type, self.priority, self.max_attempts, self.timeout)
        check_payload(self.payload, limits)
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
        )


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


def bounded_history(history: tuple[Attempt, ...]) -> tuple[Attempt, ...]:
    """The last :data:`MAX_ATTEMPTS_LIMIT` entries (an operator may revive a job many times
    and a record must stay small), always with the latest attempt: its number is where the
    next attempt's numbering goes on, even after a long run of requeue entries."""
    if len(history) <= MAX_ATTEMPTS_LIMIT:
        return history
    tail = history[-MAX_ATTEMPTS_LIMIT:]
    if any(a.number is not None for a in tail):
        return tail
    numbered = [a for a in history if a.number is not None]
    if not numbered:
        return tail
    return (numbered[-1], *history[-(MAX_ATTEMPTS_LIMIT - 1) :])


def short(text: str | None, limit: int = MESSAGE_LIMIT) -> str | None:
    """An error message cut to ``limit`` characters: a record must stay far below 1 MB
    however long the messages its attempts raised."""
    if text is None:
        return text
    text = as_text(text)
    if len(text) <= limit:
        return text
    return text[: limit - 12] + "…(truncated)"


def truncate_traceback(text: str) -> str:
    text = as_text(text)
    if len(text) <= TRACEBACK_LIMIT:
        return text
    return "…(truncated)\n" + text[-TRACEBACK_LIMIT:]


__all__ = [
    "ATTEMPT",
    "REQUEUE",
    "TERMINAL_STATES",
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
    "check_transition",
]

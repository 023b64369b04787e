"""A job record's ``history``: one entry per try at running the job, or per time the job
was sent back to the queue; and the bounds that keep a record small however long its life.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.validation import as_text

#: a record keeps at most this many history entries (as many as a job may have attempts)
HISTORY_LIMIT = 100
TRACEBACK_LIMIT = 8 * 1024
MESSAGE_LIMIT = 1024


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
class Attempt:
    """An entry of the record's ``history``, kept for operators: one try at running the job
    (``kind`` ``attempt``), or the job sent back to the queue (``kind`` ``requeue``).

    Attempts are numbered 1, 2, ... over the job's whole life: a number is never given
    twice, across retries, requeues and revivals alike (``attempts`` is another count: the
    tries spent against ``max_attempts``, which a requeue by an operator gives back and a
    revival starts afresh).  A requeue entry has no number; it says who sent the job back
    (``by``: ``operator``, ``leader`` or ``worker``), why (``error``), when (``started_at``,
    equal to ``ended_at``) and from which worker (``worker``, empty if it had none); its
    outcome is ``requeued``.
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
    #: of a requeue entry: who sent the job back, ``operator``, ``leader`` or ``worker`` (one
    #: that stopped the attempt itself, cut off from ZooKeeper for too long)
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


def bounded_history(history: tuple[Attempt, ...]) -> tuple[Attempt, ...]:
    """The last :data:`HISTORY_LIMIT` entries (an operator may revive a job many times
    and a record must stay small), always with the latest attempt: its number is where the
    next attempt's numbering goes on, even after a long run of requeue entries."""
    if len(history) <= HISTORY_LIMIT:
        return history
    tail = history[-HISTORY_LIMIT:]
    if any(a.number is not None for a in tail):
        return tail
    numbered = [a for a in history if a.number is not None]
    if not numbered:
        return tail
    return (numbered[-1], *history[-(HISTORY_LIMIT - 1) :])


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
    "MESSAGE_LIMIT",
    "REQUEUE",
    "TRACEBACK_LIMIT",
    "Attempt",
    "AttemptOutcome",
    "bounded_history",
    "short",
    "truncate_traceback",
]

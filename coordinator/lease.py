"""The lease of a running attempt: the data of its claim, ``claims/<job_id>``.

The claim is the ephemeral node a worker creates when it starts an attempt (in the start
multi, :func:`zkq.coordinator.lifecycle.start`).  Its data says who holds it and for how
long it asked::

    {"worker": "w1", "attempt": 3, "lease": 30.0, "seq": 0}

- ``lease``: seconds, the duration the worker last asked for (the job's timeout at start
  and on ``ctx.heartbeat()``, ``s`` after ``ctx.extend(s)``).  A duration, never a time:
  the leader times it on its own monotonic clock from when it *sees* the renewal, so no
  worker's clock takes part in the decision.
- ``seq``: how many renewals the worker wrote (for people; the leader goes by the node's
  version, which every write moves on).

Only the worker that created the claim writes it, with the version it created or last
wrote (so a heartbeat of an attempt that was taken back can never land on the next
attempt's claim, whoever holds it); the leader only reads it and deletes it at the version
it judged.  A claim written by an older zkq holds the bare worker id: it parses as a claim
without a lease (the leader then times the attempt by the job's timeout, as before).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Lease:
    """A claim's data, parsed."""

    worker: str
    attempt: int | None = None
    seconds: float | None = None  # None: a legacy claim (no lease, the timeout rules)
    seq: int = 0

    def to_bytes(self) -> bytes:
        data = {"worker": self.worker, "attempt": self.attempt, "lease": self.seconds}
        return json.dumps({**data, "seq": self.seq}, separators=(",", ":")).encode()

    def renewed(self, seconds: float) -> Lease:
        return Lease(self.worker, self.attempt, float(seconds), self.seq + 1)


def parse_lease(raw: bytes) -> Lease:
    """A claim's data; never raises (a claim nobody can read is a lease-less claim)."""
    text = raw.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            seconds = _number(data.get("lease"))
            attempt = _number(data.get("attempt"))
            return Lease(
                str(data.get("worker") or ""),
                int(attempt) if attempt is not None and attempt == int(attempt) else None,
                seconds if seconds is not None and seconds > 0 else None,
                int(_number(data.get("seq")) or 0),
            )
    return Lease(text)  # the bare worker id of an older zkq


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


__all__ = ["Lease", "parse_lease"]

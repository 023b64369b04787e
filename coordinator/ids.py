"""Job ids: ULIDs chosen by the submitter, never sequential znodes.

A submitter picks the id before it talks to ZooKeeper, so a ``create`` retried after a
ConnectionLoss finds ``NodeExists`` and can compare contents instead of creating a
duplicate (the trap of sequential nodes).  ULIDs sort by creation time, which gives FIFO
order within a priority and the time buckets of :mod:`zkq.coordinator.paths`.

Ids made by one process are strictly increasing even within a millisecond (the random
part is incremented), so a batch keeps its submission order.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time

from ulid import ULID

from zkq.coordinator.errors import InvalidJobId

_ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = 0  # the last id issued by this process, as a 128-bit integer


def new_job_id() -> str:
    """A fresh, process-monotonic ULID string."""
    global _last
    with _lock:
        candidate = int(ULID())
        if candidate >> _RANDOM_BITS <= _last >> _RANDOM_BITS and candidate <= _last:
            candidate = _last + 1
        _last = candidate
    return str(ULID.from_int(candidate))


def validate_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is a canonical ULID string, else raise :class:`InvalidJobId`."""
    if not isinstance(job_id, str) or not _ULID_RE.match(job_id):
        raise InvalidJobId(
            f"{job_id!r} is not a job id: expected 26 Crockford base32 characters (a ULID)"
        )
    return job_id


def id_time(job_id: str) -> float:
    """Creation time (Unix seconds) encoded in a job id."""
    return ULID.from_str(job_id).timestamp


def id_for_time(unix_seconds: float) -> str:
    """The smallest id of the given millisecond: a lower bound for range scans."""
    millis = int(unix_seconds * 1000)
    return str(ULID.from_int(millis << _RANDOM_BITS))


def now() -> float:
    return time.time()


def derived_job_id(instant: float, key: str) -> str:
    """The id of the job a schedule's tick makes: a ULID whose time is the tick's instant
    and whose random bits are the first 80 bits of sha256(``key``).  Every ticker computes
    the same id for one tick, so a second one's create fails ``NodeExists`` however it
    came to decide that tick (``key`` names the owner, the schedule and the tick)."""
    digest = hashlib.sha256(b"zkq-tick\0" + key.encode()).digest()
    millis = round(instant * 1000)
    return str(ULID.from_int((millis << _RANDOM_BITS) | int.from_bytes(digest[:10], "big")))

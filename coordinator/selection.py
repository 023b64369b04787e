"""Which jobs a listing or a bulk action means: a filter, a time window and an order.

Job ids are ULIDs, so an id carries its creation time and ids sort by it.  A time window
is therefore a range of ids (:meth:`JobFilter.id_range`), which lets a scan
(:mod:`zkq.coordinator.listing`) skip whole buckets outside it instead of reading their
records, and "newest first" is the same scan walked backwards.

Times are given as the ``zkq`` command and the API take them (:func:`parse_when`): a
duration meaning that long ago (``90s``, ``10m``, ``2h``, ``1d``, ``1w``), an ISO-8601
time (``2026-12-03T14:00:00Z``; without a zone, UTC), or Unix seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.ids import id_for_time
from zkq.coordinator.job import Job

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
#: ULID time is 48 bits of milliseconds; past this no id exists
_LAST_SECOND = float((1 << 48) - 1) / 1000.0
ORDERS = ("newest", "oldest")


def parse_when(text: str | float | int, now: float | None = None) -> float:
    """Unix seconds for ``10m`` (ten minutes ago), an ISO-8601 time, or Unix seconds."""
    if isinstance(text, bool):
        raise InvalidInput(f"{text!r} is not a time")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        raw = text.strip()
        duration = _DURATION.match(raw.lower())
        if duration:
            ago = float(duration.group(1)) * _UNITS[duration.group(2)]
            seconds = (time.time() if now is None else now) - ago
        else:
            seconds = _absolute(raw)
    if not 0 <= seconds <= _LAST_SECOND:
        raise InvalidInput(f"{text!r} is outside the times a job id can hold")
    return seconds


def _absolute(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{raw!r} is not a time: give a duration ago (10m, 2h, 1d), an ISO-8601 time "
            "(2026-12-03T14:00:00Z) or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class JobFilter:
    """Jobs of ``tenant`` (None: any), in one of ``states`` (empty: any), of ``job_type``,
    created at or after ``since`` and before ``until`` (Unix seconds, by the id's time)."""

    tenant: str | None = None
    states: frozenset[str] = field(default_factory=frozenset)
    job_type: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def of(
        cls,
        *,
        tenant: str | None = None,
        states: Iterable[str] | str | None = None,
        job_type: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        now: float | None = None,
    ) -> JobFilter:
        """A filter from the texts a user gives (``since="2h"``); :class:`InvalidInput`
        for a time that does not parse or a window that is empty."""
        wanted = frozenset([states] if isinstance(states, str) else (states or ()))
        start = None if since is None else parse_when(since, now)
        end = None if until is None else parse_when(until, now)
        if start is not None and end is not None and start >= end:
            raise InvalidInput(f"since ({since}) must be before until ({until})")
        return cls(tenant, frozenset(str(s) for s in wanted), job_type, start, end)

    @property
    def narrows(self) -> bool:
        """True when anything but the tenant is given (a bulk action needs that)."""
        return bool(self.states) or any(
            v is not None for v in (self.job_type, self.since, self.until)
        )

    def id_range(self) -> tuple[str | None, str | None]:
        """(lowest id, inclusive; highest id, exclusive) of the window, None: open."""
        low = None if self.since is None else id_for_time(self.since)
        high = None if self.until is None else id_for_time(self.until)
        return low, high

    def in_window(self, job_id: str) -> bool:
        low, high = self.id_range()
        return (low is None or job_id >= low) and (high is None or job_id < high)

    def matches(self, job: Job) -> bool:
        return (
            (self.tenant is None or job.tenant == self.tenant)
            and (not self.states or str(job.state) in self.states)
            and (self.job_type is None or job.type == self.job_type)
            and self.in_window(job.id)
        )

    def describe(self) -> str:
        """``of type T in state pending created since ...``, for a confirmation."""
        parts = []
        if self.job_type is not None:
            parts.append(f"of type {self.job_type}")
        if self.tenant is not None:
            parts.append(f"of tenant {self.tenant}")
        if self.states:
            parts.append("in state " + " or ".join(sorted(self.states)))
        if self.since is not None:
            parts.append(f"created since {_iso(self.since)}")
        if self.until is not None:
            parts.append(f"created before {_iso(self.until)}")
        return " ".join(parts)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["ORDERS", "JobFilter", "parse_when"]

"""Periodic schedules: their records and their fire times.

A schedule is two znodes (see :mod:`zkq.coordinator.paths`)::

    schedules/<owner>/<name>        the definition: what to run and when (operator, tenant)
    schedules/<owner>/<name>/state  where it is: the last tick written (the leader alone)

The state has a node of its own so that nothing but the leader's ticker ever writes it: an
edit or a pause of the definition cannot roll ``last_tick_at`` back, and does not make an
in-flight tick fail.

Fire times.  A ``cron`` expression is evaluated by croniter on *naive local* times only; the
time zone is applied here with :mod:`zoneinfo` (croniter's own handling of aware times
across DST has a history of extra and missing fires).  The rules are cron's:

- a fire time in a spring-forward gap runs once, at the first instant after the gap;
- an ambiguous fall-back time runs once, at its first occurrence (``fold=0``);
- a schedule with ``*`` in the hour field follows elapsed time instead: it fires at every
  real instant whose wall time matches, both occurrences of a repeated hour included.

Only ``last_tick_at`` (a UTC instant) is ever compared or advanced; the tick *key* (the
local time with its offset, or the UTC instant of an ``every`` tick) is identity only: it
goes into the derived job id and the job's ``schedule.tick``.  Finding the next tick and the
latest missed one costs O(1) croniter steps, whatever was missed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import check_retry, validate_spec

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
#: the owner of schedules that belong to no tenant (config, operators)
SYSTEM_OWNER = "_"
MISFIRE = ("run_once", "skip")
OVERLAP = ("allow", "skip")
SOURCES = ("api", "config")
#: a DST shift is at most this long (most are one hour; Troll's is two)
_SHIFT = timedelta(hours=3)
#: how many missed ticks are counted one by one before the count says "at least"
COUNT_CAP = 1000
MAX_EVERY = 366 * 86400
#: 2100-01-01: instants beyond would overflow the dates of ticks computed from them
LATEST_INSTANT = 4_102_444_800.0
DEFINITION_FIELDS = (
    "name",
    "owner",
    "cron",
    "every",
    "timezone",
    "anchor",
    "template",
    "misfire",
    "misfire_grace",
    "overlap",
    "paused",
    "source",
)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(
            f"schedule name {name!r} is invalid: use 1-64 of a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    return name


def check_owner(owner: Any) -> str:
    """A tenant's name (1-64 characters, as keys allow) or ``_``; it is one znode name."""
    if (
        not isinstance(owner, str)
        or not 0 < len(owner) <= 64
        or "/" in owner
        or owner in (".", "..")
        or not owner.isprintable()
    ):
        raise InvalidInput(f"schedule owner {owner!r} is invalid: a tenant's name, or _")
    return owner


def zone(name: Any) -> ZoneInfo:
    try:
        if not isinstance(name, str) or not name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe", a directory
        raise InvalidInput(
            f"time zone {name!r} is unknown: use an IANA name such as Europe/Berlin or UTC"
        ) from None


def check_cron(expr: Any) -> str:
    # five fields, no @aliases nor seconds: the hour field is where the DST rule looks
    if not isinstance(expr, str) or len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise InvalidInput(f"cron expression {expr!r} is invalid: use five fields, as 30 2 * * *")
    return expr


def check_template(template: Any) -> dict[str, Any]:
    if not isinstance(template, dict) or not isinstance(template.get("type"), str):
        raise InvalidInput("a schedule's template needs a job type: {'type': ...}")
    out = {
        "type": template["type"],
        "payload": template.get("payload"),
        "priority": int(template.get("priority", 0)),
        "max_attempts": int(template.get("max_attempts", 1)),
        "timeout": float(template.get("timeout", 300.0)),
    }
    validate_spec(out["type"], out["priority"], out["max_attempts"], out["timeout"])
    retry = check_retry(template.get("retry"))
    if retry is not None:
        out["retry"] = retry
    return out


@dataclass(frozen=True)
class ScheduleState:
    """Where a schedule is; written by the leader's ticker alone."""

    last_tick: str | None = None  # the key of the last tick decided (identity only)
    last_tick_at: float | None = None  # its UTC instant: the one thing compared
    last_job: str | None = None
    skipped: int = 0

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ScheduleState:
        data = json.loads(raw or b"{}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class ScheduleRecord:
    """A schedule's definition (``schema: 1``); unknown fields are kept in ``extra``."""

    name: str
    owner: str
    template: dict[str, Any]
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    anchor: float | None = None
    misfire: str = "run_once"
    misfire_grace: float | None = None
    overlap: str = "allow"
    paused: bool = False
    source: str = "api"
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.name)
        check_owner(self.owner)
        if (self.cron is None) == (self.every is None):
            raise InvalidInput("a schedule needs exactly one of cron and every")
        if self.cron is not None:
            check_cron(self.cron)
        if self.every is not None and not (
            isinstance(self.every, int | float) and 1 <= self.every <= MAX_EVERY
        ):
            raise InvalidInput(
                f"every must be at least 1 second and at most {MAX_EVERY} (a year), "
                f"not {self.every!r}"
            )
        for name in ("anchor", "created_at"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, int | float) and 0 <= value <= LATEST_INSTANT
            ):
                raise InvalidInput(f"{name} must be Unix seconds before 2100, not {value!r}")
        zone(self.timezone)
        if self.misfire not in MISFIRE:
            raise InvalidInput(f"misfire must be one of {', '.join(MISFIRE)}")
        if self.overlap not in OVERLAP:
            raise InvalidInput(f"overlap must be one of {', '.join(OVERLAP)}")
        if self.source not in SOURCES:
            raise InvalidInput(f"source must be one of {', '.join(SOURCES)}")
        if self.misfire_grace is not None and self.misfire_grace < 0:
            raise InvalidInput("misfire_grace must not be negative")
        object.__setattr__(self, "template", check_template(self.template))
        if self.cron is not None:
            self.next_after(self.created_at or 1_767_225_600.0)  # refuses one never due

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in DEFINITION_FIELDS}
        data["created_at"] = self.created_at
        data["definition_hash"] = self.definition_hash
        return {**self.extra, "schema": 1, **data}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScheduleRecord:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        extra = {k: v for k, v in data.items() if k not in known and k != "schema"}
        extra.pop("definition_hash", None)
        return cls(**{k: v for k, v in data.items() if k in known}, extra=extra)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ScheduleRecord:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("a schedule record is a JSON object")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> ScheduleRecord:
        return dataclasses.replace(self, **changes)

    @property
    def definition_hash(self) -> str:
        """Of what decides the jobs (not ``paused``): equal hashes, equal schedules."""
        keep = {n: getattr(self, n) for n in DEFINITION_FIELDS if n != "paused"}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]

    # -- fire times ------------------------------------------------------------------------
    @property
    def grace(self) -> float:
        """How late a tick may still run as itself (default: min(60 s, period / 2))."""
        if self.misfire_grace is not None:
            return float(self.misfire_grace)
        return min(60.0, self.period / 2)

    @property
    def period(self) -> float:
        if self.every is not None:
            return float(self.every)
        it = croniter(self.cron, datetime(2026, 1, 5, 0, 0))
        first = it.get_next(datetime)
        return float((it.get_next(datetime) - first).total_seconds())

    @property
    def elapsed(self) -> bool:
        """Follows elapsed time across DST (``*`` in the hour field) rather than wall time."""
        return self.cron is not None and self.cron.split()[1] == "*"

    def _anchor(self) -> float:
        assert self.every is not None
        if self.anchor is not None:
            return float(self.anchor)
        return self.created_at - self.created_at % self.every

    def key(self, instant: float) -> str:
        """The identity of the tick at ``instant``."""
        if self.every is not None:
            return datetime.fromtimestamp(instant, UTC).isoformat()
        return datetime.fromtimestamp(instant, zone(self.timezone)).isoformat()

    def next_after(self, after: float) -> float:
        """The first tick strictly after ``after`` (UTC epoch seconds)."""
        if self.every is not None:
            anchor, every = self._anchor(), float(self.every)
            return anchor + ((after - anchor) // every + 1) * every
        tz, start = zone(self.timezone), _naive(after, zone(self.timezone))
        near = _near_transition(after, tz)
        it = croniter(self.cron, start - _SHIFT if near else start)
        best: float | None = None
        for _ in range(2000):  # bounded: a few hours of candidates around a transition
            try:
                naive = it.get_next(datetime)
            except CroniterError:
                break  # none within croniter's search (e.g. 31 February)
            for instant in self._instants(naive, tz):
                if instant > after and (best is None or instant < best):
                    best = instant
            if best is not None and (not near or naive > start + _SHIFT):
                return best
        if best is not None:
            return best
        raise InvalidInput(f"cron expression {self.cron!r} never fires: check its day and month")

    def latest_at_or_before(self, now: float) -> float | None:
        """The last tick at or before ``now`` (None: none within a year)."""
        if self.every is not None:
            anchor, every = self._anchor(), float(self.every)
            return anchor + ((now - anchor) // every) * every
        tz, start = zone(self.timezone), _naive(now, zone(self.timezone))
        near = _near_transition(now, tz)
        # get_prev is strictly earlier than its start: a second on, a tick at ``now`` counts
        it = croniter(self.cron, start + (_SHIFT if near else timedelta()) + timedelta(seconds=1))
        best: float | None = None
        for _ in range(2000):
            try:
                naive = it.get_prev(datetime)
            except CroniterError:
                break
            for instant in self._instants(naive, tz):
                if instant <= now and (best is None or instant > best):
                    best = instant
            if best is not None and (not near or naive < start - _SHIFT):
                return best
        return best

    def _instants(self, naive: datetime, tz: ZoneInfo) -> list[float]:
        """The real instants a naive local fire time stands for, by the rules above."""
        first = naive.replace(tzinfo=tz, fold=0)
        second = naive.replace(tzinfo=tz, fold=1)
        if _exists(first):
            if first.utcoffset() != second.utcoffset():  # ambiguous
                if self.elapsed:
                    return [first.timestamp(), second.timestamp()]
                return [first.timestamp()]
            return [first.timestamp()]
        if self.elapsed:
            return []  # that wall time never happens; elapsed time fires the next real one
        return [_gap_end(second.timestamp(), first.timestamp(), tz)]

    def missed_between(self, first: float, latest: float) -> int:
        """Ticks in [first, latest), counted one by one up to :data:`COUNT_CAP`."""
        if self.every is not None:
            return int(min(COUNT_CAP, max(0.0, (latest - first) // float(self.every))))
        count, at = 0, first
        while at < latest and count < COUNT_CAP:
            count += 1
            at = self.next_after(at)
        return count


def _naive(instant: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant, tz).replace(tzinfo=None, fold=0)


def _exists(local: datetime) -> bool:
    """Whether an aware local time is real (not in a spring-forward gap)."""
    back = datetime.fromtimestamp(local.timestamp(), local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def _near_transition(instant: float, tz: ZoneInfo) -> bool:
    offsets = {
        datetime.fromtimestamp(instant + delta, tz).utcoffset()
        for delta in (-_SHIFT.total_seconds(), 0.0, _SHIFT.total_seconds())
    }
    return len(offsets) > 1


def _gap_end(low: float, high: float, tz: ZoneInfo) -> float:
    """The first instant after a gap: the instant the offset changes, between ``low``
    (before it) and ``high`` (after it), to the second."""
    before = datetime.fromtimestamp(low, tz).utcoffset()
    lo, hi = int(low), int(high) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return float(hi)

"""Bodies of ``/v1/schedules`` (:mod:`zkq.frontend.routes.schedules`): periodic schedules
that the leader turns into jobs, one per tick."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from zkq.coordinator.job import MAX_ATTEMPTS_LIMIT, MAX_TIMEOUT_SECONDS
from zkq.coordinator.paths import PRIORITY_MAX, PRIORITY_MIN
from zkq.coordinator.schedule_book import ScheduleView
from zkq.coordinator.schedules import LATEST_INSTANT, MAX_EVERY, NAME_RE
from zkq.frontend.keys import TENANT_MAX
from zkq.frontend.models import JobType, WholeInt, _Query, _Strict

OWNER = Field(
    None,
    min_length=1,
    max_length=TENANT_MAX,
    description="Admin keys: whose schedule (a tenant, or `_` for operators' schedules); "
    "by default the key's own tenant.  Other keys reach their own tenant's only.",
)


class ScheduleTemplate(_Strict):
    """The job each tick submits."""

    type: JobType = Field(description="The handler that runs it, e.g. `report`.")
    payload: Any = Field(None, description="Any JSON; at most the payload limit (64 KiB).")
    priority: WholeInt = Field(0, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    max_attempts: WholeInt = Field(1, ge=1, le=MAX_ATTEMPTS_LIMIT)
    timeout: float = Field(300.0, gt=0, le=MAX_TIMEOUT_SECONDS)


class ScheduleIn(_Strict):
    """A periodic schedule: exactly one of `cron` and `every`."""

    name: str = Field(pattern=NAME_RE.pattern, description="1-64 of a-z 0-9 . _ -")
    cron: str | None = Field(
        None, max_length=200, description="Five-field cron, as `30 2 * * *`, in `timezone`."
    )
    every: float | None = Field(
        None, ge=1, le=MAX_EVERY, description="Or: every this many seconds (UTC)."
    )
    timezone: str = Field("UTC", max_length=64, description="IANA zone of `cron`.")
    anchor: float | None = Field(
        None,
        ge=0,
        le=LATEST_INSTANT,
        description="`every` ticks at anchor + k*every (Unix seconds; default: creation).",
    )
    template: ScheduleTemplate
    misfire: Literal["run_once", "skip"] = Field(
        "run_once",
        description="Ticks missed (no leader, paused): one job for the latest, or none.",
    )
    misfire_grace: float | None = Field(
        None, ge=0, description="Seconds a tick may be late and still run as itself."
    )
    overlap: Literal["allow", "skip"] = Field(
        "allow", description="`skip`: no new job while the last one has not finished."
    )
    paused: bool = False
    owner: str | None = OWNER


class OwnerQuery(_Query):
    owner: str | None = OWNER


class ScheduleStateOut(_Strict):
    last_tick: str | None = Field(description="The last tick's identity (local time).")
    last_tick_at: float | None = Field(description="Its instant (Unix seconds).")
    last_job: str | None = Field(description="The job the last tick made.")
    skipped: int = Field(description="Ticks that made no job (misfire, overlap).")


class ScheduleOut(_Strict):
    name: str
    owner: str
    cron: str | None
    every: float | None
    timezone: str
    anchor: float | None
    template: dict[str, Any]
    misfire: str
    misfire_grace: float | None
    overlap: str
    paused: bool
    source: str
    created_at: float
    definition_hash: str
    state: ScheduleStateOut

    @classmethod
    def of(cls, view: ScheduleView) -> ScheduleOut:
        data = view.to_dict()
        known = set(cls.model_fields)
        return cls.model_validate({k: v for k, v in data.items() if k in known}, strict=False)


class ScheduleList(_Strict):
    schedules: list[ScheduleOut]


class ScheduleRemoved(_Strict):
    name: str
    owner: str
    removed: bool

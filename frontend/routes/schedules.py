"""``/v1/schedules``: periodic schedules, made into jobs by the leader one per tick.

Confinement as for jobs: a key reaches its own tenant's schedules (``schedules/<tenant>``);
an admin key may name any owner, ``_`` (operators' and config schedules) included.
Writing needs ``submit``, reading ``read``.  The template's job type is admitted as a
submission's is (the per-tenant cap on job types).  A frontend writes only the definition
node, at the version it read; the state below it is the leader's.
"""

from __future__ import annotations

import time
from typing import Any

from zkq.coordinator.errors import Forbidden, InvalidInput, NotFound
from zkq.coordinator.schedule_book import ScheduleBook
from zkq.coordinator.schedules import ScheduleRecord, check_name, check_owner
from zkq.frontend import auth
from zkq.frontend.api import api
from zkq.frontend.auth import current_key
from zkq.frontend.resources import current as resources
from zkq.frontend.schedule_models import (
    OwnerQuery,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
    ScheduleRemoved,
)

TAG = "schedules"


def _owner(wanted: str | None) -> str:
    own = current_key().tenant
    if wanted is None or wanted == own:
        return own
    if not auth.is_admin():
        raise Forbidden("only an admin key reaches another tenant's schedules: leave out owner")
    return wanted


def _valid(owner: str) -> str:
    """An owner that can name schedules; one that cannot (a ``/`` in it, ``..``) has none:
    reading, changing or removing one of its schedules finds nothing."""
    try:
        return check_owner(owner)
    except InvalidInput:
        raise NotFound(f"no schedules of owner {owner!r}: an owner is a tenant, or _") from None


def _book(owner: str) -> ScheduleBook:
    zk = resources().zk
    return ScheduleBook(zk.store.session, zk.store.layout, owner)


@api.route(
    "/v1/schedules",
    "POST",
    summary="Add a periodic schedule (200 when the same one exists already)",
    scope="submit",
    body=ScheduleIn,
    ok=(201, ScheduleOut),
    errors=(409,),
    tag=TAG,
)
def add_schedule(body: ScheduleIn) -> tuple[Any, ...]:
    owner = check_owner(_owner(body.owner))
    record = ScheduleRecord(
        name=body.name,
        owner=owner,
        cron=body.cron,
        every=body.every,
        timezone=body.timezone,
        anchor=body.anchor,
        template=body.template.model_dump(),
        misfire=body.misfire,
        misfire_grace=body.misfire_grace,
        overlap=body.overlap,
        paused=body.paused,
        created_at=time.time(),
    )
    res = resources()
    res.mysql.job_types.admit(owner, {record.template["type"]})
    with res.zk.call():
        view, created = _book(owner).add(record)
    return ScheduleOut.of(view), 201 if created else 200


@api.route(
    "/v1/schedules",
    "GET",
    summary="List the schedules of a tenant",
    scope="read",
    query=OwnerQuery,
    ok=(200, ScheduleList),
    errors=(400,),
    tag=TAG,
)
def list_schedules(query: OwnerQuery) -> tuple[Any, ...]:
    owner = _owner(query.owner)
    try:
        _valid(owner)
    except NotFound:
        return ScheduleList(schedules=[]), 200
    with resources().zk.call():
        views = _book(owner).list()
    return ScheduleList(schedules=[ScheduleOut.of(v) for v in views]), 200


@api.route(
    "/v1/schedules/{name}",
    "GET",
    summary="A schedule and where it is (its last tick)",
    scope="read",
    query=OwnerQuery,
    ok=(200, ScheduleOut),
    errors=(400,),
    tag=TAG,
)
def get_schedule(name: str, query: OwnerQuery) -> tuple[Any, ...]:
    owner = _valid(_owner(query.owner))
    with resources().zk.call():
        return ScheduleOut.of(_book(owner).get(check_name(name))), 200


@api.route(
    "/v1/schedules/{name}",
    "DELETE",
    summary="Remove a schedule (the jobs it made stay)",
    scope="submit",
    query=OwnerQuery,
    ok=(200, ScheduleRemoved),
    errors=(400, 409),
    tag=TAG,
)
def remove_schedule(name: str, query: OwnerQuery) -> tuple[Any, ...]:
    owner = _valid(_owner(query.owner))
    with resources().zk.call():
        _book(owner).remove(check_name(name))
    return ScheduleRemoved(name=name, owner=owner, removed=True), 200


@api.route(
    "/v1/schedules/{name}/pause",
    "POST",
    summary="Pause a schedule: no ticks until resumed",
    scope="submit",
    query=OwnerQuery,
    ok=(200, ScheduleOut),
    errors=(400, 409),
    tag=TAG,
)
def pause_schedule(name: str, query: OwnerQuery) -> tuple[Any, ...]:
    owner = _valid(_owner(query.owner))
    with resources().zk.call():
        return ScheduleOut.of(_book(owner).pause(check_name(name))), 200


@api.route(
    "/v1/schedules/{name}/resume",
    "POST",
    summary="Resume a schedule; ticks missed while paused follow its misfire policy",
    scope="submit",
    query=OwnerQuery,
    ok=(200, ScheduleOut),
    errors=(400, 409),
    tag=TAG,
)
def resume_schedule(name: str, query: OwnerQuery) -> tuple[Any, ...]:
    owner = _valid(_owner(query.owner))
    with resources().zk.call():
        return ScheduleOut.of(_book(owner).resume(check_name(name))), 200

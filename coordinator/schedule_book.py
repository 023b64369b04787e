"""Reading and editing periodic schedules, as operators and tenants do (the CLI, the HTTP
frontend, :class:`~zkq.coordinator.client.Client`).

Editors write only the definition node, and only at the version they read (a pause that
raced an edit is refused, not lost); the state node below it is the leader's ticker's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.errors import Conflict, InvalidInput, NotFound
from zkq.coordinator.paths import Layout
from zkq.coordinator.schedules import SYSTEM_OWNER, ScheduleRecord, ScheduleState
from zkq.coordinator.zk import (
    BadVersion,
    Delete,
    NodeExists,
    NoNode,
    TransactionFailed,
    ZkSession,
)

#: schedules one owner may have, and the whole cluster (each is one node the leader
#: watches and rereads on reconnect)
MAX_PER_OWNER = int(os.environ.get("ZKQ_MAX_SCHEDULES_PER_TENANT", "100"))
MAX_SCHEDULES = int(os.environ.get("ZKQ_MAX_SCHEDULES", "10000"))


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as shown to its owner: definition and state."""

    record: ScheduleRecord
    state: ScheduleState

    def to_dict(self) -> dict[str, Any]:
        out = self.record.to_dict()
        out.pop("schema", None)
        return {**out, "state": {**vars(self.state)}}


class ScheduleBook:
    """The schedules of one cluster, through one session.  ``owner`` is the one a call
    that names none touches (a tenant, or ``_`` for operators' and config schedules).

    >>> from zkq import Client
    >>> from zkq.coordinator.schedules import ScheduleRecord
    >>> with Client() as client:  # doctest: +SKIP
    ...     client.schedules.add(ScheduleRecord(
    ...         name="nightly", owner="_", cron="30 2 * * *", timezone="Europe/Berlin",
    ...         template={"type": "report", "payload": {"kind": "daily"}}))
    ...     client.schedules.pause("nightly")
    ...     [v.record.name for v in client.schedules.list()]
    ...     client.schedules.resume("nightly")
    ...     client.schedules.remove("nightly")
    """

    def __init__(self, session: ZkSession, layout: Layout, owner: str = SYSTEM_OWNER) -> None:
        self.session = session
        self.layout = layout
        self.owner = owner

    def pause(self, name: str, owner: str | None = None) -> ScheduleView:
        return self.set_paused(owner or self.owner, name, True)

    def resume(self, name: str, owner: str | None = None) -> ScheduleView:
        return self.set_paused(owner or self.owner, name, False)

    def add(self, record: ScheduleRecord) -> tuple[ScheduleView, bool]:
        """Create ``record`` (its ``created_at`` is now when unset); returns the view and
        whether it was created.  The same definition again is no error (a retried add);
        another under the same name is :class:`Conflict`."""
        if not record.created_at:
            record = record.replace(created_at=time.time())
        owner_path = self.layout.schedules_of(record.owner)
        try:
            taken = self.session.get_children(owner_path)
        except NoNode:
            taken = []
        if record.name not in taken:
            if len(taken) >= MAX_PER_OWNER:
                raise InvalidInput(
                    f"owner {record.owner!r} has {len(taken)} schedules, the most allowed: "
                    "remove one first"
                )
            if self._count() >= MAX_SCHEDULES:
                raise InvalidInput(f"the cluster has {MAX_SCHEDULES} schedules: remove some first")
        self.session.ensure_path(owner_path)
        try:
            self.session.create(self.layout.schedule(record.owner, record.name), record.to_bytes())
            return ScheduleView(record, ScheduleState()), True
        except NodeExists:
            view = self.get(record.name, record.owner)
            if view.record.definition_hash != record.definition_hash:
                raise Conflict(
                    f"schedule {record.name!r} exists with another definition: "
                    "remove it first, or choose another name"
                ) from None
            return view, False

    def _count(self) -> int:
        owners = self.session.get_children(self.layout.schedules)
        return sum(len(self._names(owner)) for owner in owners)

    def _names(self, owner: str) -> list[str]:
        try:
            return sorted(self.session.get_children(self.layout.schedules_of(owner)))
        except NoNode:
            return []

    def get(self, name: str, owner: str | None = None) -> ScheduleView:
        """One schedule and its state (:class:`NotFound` when there is none)."""
        return self._read(owner or self.owner, name)[0]

    def _read(self, owner: str, name: str) -> tuple[ScheduleView, int]:
        path = self.layout.schedule(owner, name)
        try:
            raw, stat = self.session.get(path)
        except NoNode:
            raise NotFound(
                f"no schedule {name!r} (owner {owner}): see `zkq schedules list`"
            ) from None
        try:
            state = ScheduleState.from_bytes(self.session.get(path + "/state")[0])
        except NoNode:
            state = ScheduleState()
        return ScheduleView(ScheduleRecord.from_bytes(raw), state), stat.version

    def list(self, owner: str | None = None, everyone: bool = False) -> list[ScheduleView]:
        """One owner's schedules (by default this book's), or everyone's, by owner and
        name."""
        owners = (
            [owner or self.owner]
            if not everyone
            else sorted(self.session.get_children(self.layout.schedules))
        )
        out = []
        for who in owners:
            for name in self._names(who):
                try:
                    out.append(self.get(name, who))
                except NotFound:
                    continue  # removed while we listed
        return out

    def set_paused(self, owner: str, name: str, paused: bool) -> ScheduleView:
        """Pause or resume: a definition field the ticker reads.  Resuming applies the
        schedule's misfire policy to what was missed while paused."""
        for _ in range(10):
            view, version = self._read(owner, name)
            record = view.record.replace(paused=paused)
            try:
                self.session.set(self.layout.schedule(owner, name), record.to_bytes(), version)
                return ScheduleView(record, view.state)
            except BadVersion:
                continue
        raise Conflict(f"schedule {name!r} kept changing: try again")

    def remove(self, name: str, owner: str | None = None) -> None:
        """Remove the definition and its state in one multi."""
        owner = owner or self.owner
        path = self.layout.schedule(owner, name)
        for _ in range(10):
            try:
                children = self.session.get_children(path)
            except NoNode:
                raise NotFound(f"no schedule {name!r} (owner {owner})") from None
            ops = [Delete(f"{path}/{child}") for child in children] + [Delete(path)]
            try:
                self.session.multi(ops)
                return
            except TransactionFailed:
                continue  # its state appeared meanwhile
        raise Conflict(f"schedule {name!r} kept changing: try again")


__all__ = ["ScheduleBook", "ScheduleView"]

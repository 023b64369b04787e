"""A worker's registration: the data of its ephemeral ``workers/<id>`` node.

The worker writes it once when it registers (:mod:`zkq.worker.service`); the leader reads it to
know what the worker serves and how much it takes (:mod:`zkq.coordinator.roster`); an operator
or the worker itself rewrites it to say it drains (:mod:`zkq.coordinator.controls`); the census
shows it.  All of them go through :class:`WorkerInfo`, so its JSON is spelled here only.

Fields a newer zkq may add are kept in :attr:`WorkerInfo.extra` and written back when a
registration is rewritten (a drain), so an older operator tool does not strip them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class BadRegistration(ValueError):
    """A registration that is not JSON, or lacks what the leader needs (types, slots)."""


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    types: frozenset[str]
    slots: int
    #: assignments it holds beyond its slots, queued locally
    prefetch: int = 0
    pool: str | None = None  # "thread" | "process"
    host: str | None = None
    pid: int | None = None
    started_at: float | None = None
    draining: bool = False
    #: slots kept for short work: a type not known to be short holds at most
    #: ``slots - lost_slots - reserve`` of its assignments (0: no reserve, as before)
    reserve: int = 0
    #: declared lanes per type, "short" or "long" (from ``@handler(lane=...)``)
    lanes: Mapping[str, str] = field(default_factory=dict)
    #: declared per-worker concurrency per type (from ``@handler(concurrency=...)``)
    type_limits: Mapping[str, int] = field(default_factory=dict)
    #: slots whose handler could not be stopped and still runs: the leader assigns around them
    lost_slots: int = 0
    #: how it stops a revoked handler (``zkq worker --cancel-grace/--kill-grace``)
    cancel_grace: float | None = None
    kill_grace: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def drained(self) -> WorkerInfo:
        """The same registration, saying that the worker drains."""
        return dataclasses.replace(self, draining=True)

    def losing(self, lost_slots: int) -> WorkerInfo:
        """The same registration, with ``lost_slots`` slots lost."""
        return dataclasses.replace(self, lost_slots=lost_slots)

    def to_dict(self) -> dict[str, Any]:
        # what an older zkq did not write is written only when set, so a registration that
        # uses none of it reads exactly as before
        optional = {
            "reserve": self.reserve or None,
            "lanes": dict(self.lanes) or None,
            "type_limits": dict(self.type_limits) or None,
            "lost_slots": self.lost_slots or None,
            "cancel_grace": self.cancel_grace,
            "kill_grace": self.kill_grace,
        }
        return {
            **self.extra,
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "types": sorted(self.types),
            "slots": self.slots,
            "prefetch": self.prefetch,
            "pool": self.pool,
            "started_at": self.started_at,
            "draining": self.draining,
            **{k: v for k, v in optional.items() if v is not None},
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_bytes(cls, worker_id: str, raw: bytes) -> WorkerInfo:
        """The registration of ``worker_id`` (its node's name is its id, whatever the data
        says).  Raises :class:`BadRegistration` when it cannot be read."""
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise BadRegistration(f"worker {worker_id}: registration is not JSON") from exc
        if not isinstance(data, dict):
            raise BadRegistration(f"worker {worker_id}: registration is not a JSON object")
        try:
            types = data["types"]
            if isinstance(types, str) or not all(isinstance(t, str) for t in types):
                raise TypeError("types must be a list of names")
            pid, started_at = data.get("pid"), data.get("started_at")
            return cls(
                id=worker_id,
                types=frozenset(types),
                slots=int(data["slots"]),
                prefetch=max(0, int(data.get("prefetch", 0))),
                pool=data.get("pool"),
                host=data.get("host"),
                pid=None if pid is None else int(pid),
                started_at=None if started_at is None else float(started_at),
                draining=bool(data.get("draining")),
                reserve=max(0, int(data.get("reserve") or 0)),
                lanes={str(t): str(v) for t, v in dict(data.get("lanes") or {}).items()},
                type_limits={
                    str(t): int(n) for t, n in dict(data.get("type_limits") or {}).items()
                },
                lost_slots=max(0, int(data.get("lost_slots") or 0)),
                cancel_grace=_seconds(data.get("cancel_grace")),
                kill_grace=_seconds(data.get("kill_grace")),
                extra={k: v for k, v in data.items() if k not in _KNOWN},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRegistration(f"worker {worker_id}: unreadable registration: {exc}") from exc

    @classmethod
    def unreadable(cls, worker_id: str) -> WorkerInfo:
        """What is shown of a worker whose registration cannot be read: nothing served,
        as the leader treats it."""
        return cls(id=worker_id, types=frozenset(), slots=0)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)


_KNOWN = frozenset(f.name for f in dataclasses.fields(WorkerInfo)) - {"extra"}

__all__ = ["BadRegistration", "WorkerInfo"]

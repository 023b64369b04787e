"""Per-type concurrency limits set by operators: ``limits/<type>`` holds
``{"cluster": N | null, "per_worker": M | null}``.

Written by ``zkq limits set|clear`` (:mod:`zkq.coordinator.controls`), read by the leader,
which watches ``limits`` (its children) and each limit (its data) through
:class:`LimitsWatch`, a leader task on the dispatcher's thread, and applies them at
assignment (:mod:`zkq.coordinator.admission`).  A limit only holds jobs back: a job over
the cap stays pending until an attempt of its type ends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zkq.coordinator.paths import Layout
from zkq.coordinator.zk import NoNode, Watch, ZkSession

log = logging.getLogger(__name__)


class BadLimit(ValueError):
    """A limit node whose data is not ``{"cluster": N|null, "per_worker": M|null}``."""


@dataclass(frozen=True)
class TypeLimit:
    #: assigned plus running attempts of the type across the cluster (None: no cap)
    cluster: int | None = None
    #: assigned plus running attempts of the type on any one worker (None: no cap)
    per_worker: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "per_worker": self.per_worker}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> TypeLimit:
        try:
            data = json.loads(raw or b"{}")
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            return cls(_count(data.get("cluster")), _count(data.get("per_worker")))
        except (ValueError, TypeError) as exc:
            raise BadLimit(f"unreadable limit: {exc}") from exc


def _count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"a limit is a count of zero or more, not {value!r}")
    return value


class LimitsWatch:
    """The leader's copy of ``limits/``, kept by watches (a :class:`LeaderTask`)."""

    def __init__(
        self, session: ZkSession, layout: Layout, watch: Watch, mark: Callable[..., None]
    ) -> None:
        """``watch``: the dispatcher's watch, which marks a fired path for relisting;
        ``mark(*paths)``: have these listed in the next round."""
        self.session = session
        self.layout = layout
        self._watch = watch
        self._mark = mark
        self.limits: dict[str, TypeLimit] = {}

    def owns(self, path: str) -> bool:
        return path == self.layout.limits or path.startswith(self.layout.limits + "/")

    def relist(self, path: str, names: list[str] | None) -> None:
        if path == self.layout.limits:
            listed = set(names or [])
            for gone in set(self.limits) - listed:
                del self.limits[gone]
            for job_type in listed - set(self.limits):
                self._read(job_type)
        else:
            self._read(path.rsplit("/", 1)[1])

    def _read(self, job_type: str) -> None:
        try:
            raw, _ = self.session.get(self.layout.limit(job_type), watch=self._watch)
        except NoNode:
            self.limits.pop(job_type, None)
            return
        try:
            self.limits[job_type] = TypeLimit.from_bytes(raw)
        except BadLimit as exc:
            log.warning("limits/%s: %s; ignoring it", job_type, exc)
            self.limits.pop(job_type, None)

    def on_reconcile(self) -> None:
        self.limits.clear()
        self._mark(self.layout.limits)

    def step(self, wall_now: float, mono_now: float) -> int:
        return 0

    def next_at(self, wall_now: float, mono_now: float) -> float | None:
        return None


__all__ = ["BadLimit", "LimitsWatch", "TypeLimit"]

"""Bucket nodes made on demand, and remembered: a writer makes the parent of what it
creates once, not before every multi (a bucket the leader deletes later is made again by
:meth:`~zkq.coordinator.store.JobStore.commit`'s repair, which forgets it here)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable

from zkq.coordinator.zk import ZkSession

#: how many made parents to remember (a cache, cleared when full)
REMEMBERED = 10_000


class Parents:
    def __init__(self, session: ZkSession) -> None:
        self.session = session
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def ensure(self, paths: Iterable[str], force: bool = False) -> None:
        """Make each of ``paths`` (and its ancestors) unless it is known to exist."""
        for path in paths:
            with self._lock:
                known = path in self._known
            if force or not known:
                self.session.retry(functools.partial(self.session.ensure_path, path))
                with self._lock:
                    if len(self._known) > REMEMBERED:
                        self._known.clear()
                    self._known.add(path)

    def forget(self, path: str) -> None:
        """``path`` was found missing: make it again next time."""
        with self._lock:
            self._known.discard(path)

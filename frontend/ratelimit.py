"""Per-key rate limits shared by every frontend, counted in MySQL (``rate_limit_counters``).

A sliding-window estimate over fixed one-minute windows: the hits of the current window
plus the previous window's hits weighted by how much of it still overlaps the last
minute.  A fixed window alone would let a client send twice its limit across a boundary.

One round trip per request: a single ``INSERT ... ON DUPLICATE KEY UPDATE`` increments the
counter *only if the request is allowed* and hands the outcome back through
``LAST_INSERT_ID(expr)`` (which the server returns in the OK packet)::

    encoded = new_hits * 2 + allowed

so refused requests do not count, and a client over its limit still gets its full rate.
The previous window's count is final once the window is over, so each process reads it
once per key and window and keeps it.

:class:`FailureLimiter` is the other limit: failed authentications per client address, in
memory, before any key is looked up.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from zkq.coordinator.errors import ZkqError
from zkq.coordinator.mysql import ConnectionPool

log = logging.getLogger(__name__)

#: windows this much older than the current one are deleted
KEEP_WINDOWS = 2
PURGE_BATCH = 1000
#: a closed window may still get a late hit from a frontend that read the clock just
#: before the boundary; its count is cached only after this many seconds
SETTLE_SECONDS = 2.0
PREVIOUS_CACHE_MAX = 10_000

_HIT = (
    "INSERT INTO rate_limit_counters (key_id, window_start, hits) "
    "VALUES (%(key)s, %(window)s, LAST_INSERT_ID(IF(%(cap)s >= 1, 3, 0)) DIV 2) "
    "ON DUPLICATE KEY UPDATE hits = "
    "LAST_INSERT_ID(IF(hits < %(cap)s, (hits + 1) * 2 + 1, hits * 2)) DIV 2"
)


class Verdict(NamedTuple):
    allowed: bool
    #: seconds until a request would be allowed (0 when this one was)
    retry_after: int
    #: requests left before the limit, after this one
    remaining: int


class RateLimiter:
    def __init__(
        self,
        pool: ConnectionPool,
        default_limit: int = 600,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.default_limit = default_limit
        self.window_seconds = window_seconds
        self.clock = clock
        self._previous: dict[tuple[int, int], int] = {}  # (key, window) -> final count
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def hit(self, key_id: int, limit_per_minute: int | None = None) -> Verdict:
        """Count one request of ``key_id`` if it is within the limit (``None``: the
        default).  Raises :class:`~zkq.coordinator.errors.DatabaseUnavailable` when MySQL
        cannot answer; whether to let the request through then is the caller's choice."""
        limit = self.default_limit if limit_per_minute is None else limit_per_minute
        now = self.clock()
        window = int(now // self.window_seconds) * self.window_seconds
        overlap = 1.0 - (now - window) / self.window_seconds
        weighted = self._previous_hits(key_id, window - self.window_seconds, now) * overlap
        cap = math.floor(limit - weighted)
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(_HIT, {"key": key_id, "window": window, "cap": cap})
            encoded = int(cur.lastrowid or 0)
        hits, allowed = encoded // 2, bool(encoded % 2)
        self._maybe_purge(now)
        if allowed:
            return Verdict(True, 0, max(0, cap - hits))
        return Verdict(False, self._retry_after(limit, hits, weighted, now - window), 0)

    def _previous_hits(self, key_id: int, window: int, now: float) -> int:
        with self._lock:
            cached = self._previous.get((key_id, window))
        if cached is not None:
            return cached
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT hits FROM rate_limit_counters WHERE key_id = %s AND window_start = %s",
                (key_id, window),
            )
            row = cur.fetchone()
        hits = int(row[0]) if row else 0
        if now - (window + self.window_seconds) >= SETTLE_SECONDS:
            with self._lock:
                if len(self._previous) >= PREVIOUS_CACHE_MAX:
                    self._previous.clear()
                self._previous[(key_id, window)] = hits
        return hits

    def _retry_after(self, limit: int, hits: int, weighted: float, elapsed: float) -> int:
        """Seconds until one more request fits, if nobody else uses the key meanwhile."""
        size = self.window_seconds
        if limit <= 0:
            return size
        if hits + 1 <= limit and weighted > 0:
            # the previous window's weight has to shrink to limit - hits - 1
            previous = weighted / (1.0 - elapsed / size)
            fraction_needed = 1.0 - (limit - hits - 1) / previous
            wait = fraction_needed * size - elapsed
        else:
            # only the next window helps, where this window's hits weigh in instead
            fraction_needed = max(0.0, 1.0 - (limit - 1) / hits) if hits else 0.0
            wait = (size - elapsed) + fraction_needed * size
        # the epsilon keeps float noise (3.0000000000000036) from adding a whole second
        return max(1, math.ceil(wait - 1e-9))

    def _maybe_purge(self, now: float) -> None:
        """Delete one batch of old windows, at most once a window per process."""
        if now < self._next_purge:
            return
        self._next_purge = now + self.window_seconds
        try:
            self.purge(now)
        except ZkqError as exc:  # housekeeping must never fail a request
            log.warning("could not purge old rate-limit windows: %s", exc)

    def purge(self, now: float | None = None, batch: int = PURGE_BATCH) -> int:
        """Delete up to ``batch`` counters of windows that can no longer matter."""
        now = self.clock() if now is None else now
        oldest_kept = (int(now // self.window_seconds) - KEEP_WINDOWS) * self.window_seconds
        with self.pool.connection() as conn, conn.cursor() as cur:
            deleted = cur.execute(
                "DELETE FROM rate_limit_counters WHERE window_start < %s LIMIT %s",
                (oldest_kept, batch),
            )
        return int(deleted)


class FailureLimiter:
    """Failed authentications per client address, counted in this process's memory and
    checked *before* a key is looked up, so a flood of bad keys costs MySQL nothing once an
    address has spent its budget.

    A token bucket per address: ``per_minute`` failures a minute, up to ``per_minute`` at
    once.  Only failures spend (a client with a valid key is never slowed by it), and a key
    this process has already verified passes even when its address has none left (that
    costs MySQL nothing either): only lookups of keys not known to be good are refused.

    In memory per process rather than in MySQL: counting in MySQL would cost the very round
    trip per bad request that this exists to save.  An address therefore gets ``per_minute``
    failures a minute *per frontend process*, a bound of the same order, which is all the
    protection needs.  At most ``max_addresses`` buckets are kept; past that the least
    recently used go (an address forgotten starts with a full budget again).
    """

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 65_536,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try a key again; ``None`` when it may now."""
        with self._lock:
            tokens = self._tokens(address)
        if tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def failed(self, address: str) -> None:
        """``address`` presented no key, or one that is not valid: spend one token."""
        with self._lock:
            self._buckets[address] = (self._tokens(address) - 1.0, self.clock())
            self._buckets.move_to_end(address)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)

    def _tokens(self, address: str) -> float:
        entry = self._buckets.get(address)
        if entry is None:
            return self.capacity
        tokens, at = entry
        return min(self.capacity, tokens + (self.clock() - at) * self.rate)

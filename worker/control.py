"""What a running attempt and its worker share: the lease the handler renews, and the word
that the attempt is over (cancelled, or taken back at its lease).

A handler sees this through its :class:`~zkq.worker.registry.JobContext`
(``ctx.heartbeat()``, ``ctx.extend(s)``, ``ctx.cancelled``).  The worker's pipeline makes one
:class:`AttemptControl` per attempt; its ``on_heartbeat`` hands renewals to the committer,
which writes them to the attempt's claim (the lease the leader reads).  In a process pool
the child has a control of its own whose renewals and cancellation cross the pipe to the
parent's.

The exceptions a handler meets live here too, so that importing them costs nothing:
:class:`Retry` (raised *by* a handler: try again later) and :class:`Cancelled` /
:class:`LeaseLost` (raised *into* one: stop now).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: why an attempt was stopped, as ``ctx.cancel_reason`` and the worker's metrics say it
CANCELLED = "cancelled"  # somebody cancelled the job
LEASE = "lease"  # the leader took the attempt back at its lease
SESSION = "session"  # the worker's ZooKeeper session ended (or stayed suspended too long)
SHUTDOWN = "shutdown"  # the worker stops now (a second signal), not draining
REASONS = (CANCELLED, LEASE, SESSION, SHUTDOWN)


class Retry(Exception):
    """Raised by a handler: this attempt failed, try again after ``delay`` seconds (None:
    after the delay the job's retry policy gives).  It spends an attempt; on the last one
    the job ends ``failed``/``dead`` like any other error.

    ::

        @zkq.handler("fetch", max_attempts=5)
        def fetch(payload, ctx):
            r = requests.get(payload["url"])
            if r.status_code == 429:
                raise zkq.Retry.after(r)      # honours its Retry-After header
            if r.status_code >= 500:
                raise zkq.Retry(delay=30, reason=f"upstream said {r.status_code}")
    """

    def __init__(self, delay: float | None = None, reason: str | None = None) -> None:
        if delay is not None and (isinstance(delay, bool) or not delay >= 0):
            raise ValueError(f"a retry delay is a number of seconds >= 0, not {delay!r}")
        self.delay = None if delay is None else float(delay)
        self.reason = reason
        super().__init__(reason or ("retry" if delay is None else f"retry in {delay:g}s"))

    @classmethod
    def after(cls, response: object, reason: str | None = None) -> Retry:
        """A retry after what ``response``'s ``Retry-After`` header says (any object with
        ``.headers``: a ``requests`` or ``httpx`` response); without one, the policy's."""
        from zkq.coordinator.backoff import retry_after_of

        return cls(retry_after_of(response), reason or "the server asked to retry later")


class Cancelled(BaseException):
    """Raised into a handler whose attempt is over: the job was cancelled (``reason``
    ``cancelled``), or the attempt was taken back (:class:`LeaseLost`).  A
    ``BaseException``, as ``asyncio.CancelledError`` is, so that ``except Exception`` in a
    handler does not swallow it."""

    def __init__(self, reason: str = CANCELLED) -> None:
        self.reason = reason
        super().__init__(f"the attempt is over ({reason})")


class LeaseLost(Cancelled):
    """The attempt was taken back: its lease ran out, or the worker lost its session."""

    def __init__(self, reason: str = LEASE) -> None:
        super().__init__(reason)


def stop_exception(reason: str) -> Cancelled:
    """What to raise into a handler stopped for ``reason``."""
    return Cancelled(reason) if reason == CANCELLED else LeaseLost(reason)


class AttemptControl:
    """One attempt's shared state: whether it is over and why, and where renewals go.

    ``on_heartbeat(seconds)`` is called for each renewal (``seconds``: how long from now
    the lease should run); it must be cheap and never block (the pipeline queues it and
    coalesces writes).  Thread-safe: the handler's thread renews, the worker cancels.
    """

    def __init__(
        self,
        job_id: str,
        timeout: float,
        on_heartbeat: Callable[[float], None] | None = None,
    ) -> None:
        self.job_id = job_id
        self.timeout = float(timeout)
        self._on_heartbeat = on_heartbeat
        self._over = threading.Event()
        self.reason: str | None = None
        # the last renewal handed on: (seconds, until when on this process's clock)
        self._sent: tuple[float, float] = (0.0, 0.0)

    @property
    def cancelled(self) -> bool:
        return self._over.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the attempt is over (True) or ``timeout`` passes (False)."""
        return self._over.wait(timeout)

    def cancel(self, reason: str) -> None:
        """The attempt is over; the first reason given is the one kept."""
        if not self._over.is_set():
            self.reason = reason
            self._over.set()

    def check(self) -> None:
        """Raise :class:`Cancelled`/:class:`LeaseLost` if the attempt is over."""
        if self._over.is_set():
            raise stop_exception(self.reason or CANCELLED)

    def heartbeat(self, seconds: float | None = None) -> None:
        """Renew the lease for ``seconds`` from now (None: the job's timeout); raises if the
        attempt is already over, so a handler that renews learns it at once."""
        self.check()
        if seconds is None:
            seconds = self.timeout
        if isinstance(seconds, bool) or not seconds > 0:
            raise ValueError(f"a lease is a number of seconds > 0, not {seconds!r}")
        seconds = float(seconds)
        now = time.monotonic()
        sent_seconds, sent_until = self._sent
        # a handler may renew in a tight loop: hand on only a renewal that moves the lease
        # by an eighth of it (the worker writes one per quarter lease at most anyway)
        if seconds == sent_seconds and now + seconds < sent_until + seconds / 8:
            return
        self._sent = (seconds, now + seconds)
        if self._on_heartbeat is not None:
            self._on_heartbeat(seconds)


__all__ = [
    "CANCELLED",
    "LEASE",
    "REASONS",
    "SESSION",
    "SHUTDOWN",
    "AttemptControl",
    "Cancelled",
    "LeaseLost",
    "Retry",
    "stop_exception",
]

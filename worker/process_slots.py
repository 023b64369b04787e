"""``--pool process``: one spawned child per slot, which the worker can stop and replace.

``ProcessPoolExecutor`` could not do it: a running future cannot be cancelled, and killing
one of its processes breaks the whole executor (every task in flight fails).  Here each
attempt runs in a child of its own (:mod:`zkq.worker.process_child`), taken from the idle
ones or spawned, on the calling slot thread, which waits on the child's work pipe, forwards
its heartbeats to the attempt's ``ctx.control`` and, once the attempt is revoked, escalates:

=====  ===================================  ========================================
step   lease / session / shutdown           cancelled
=====  ===================================  ========================================
1      ``cancel`` on the control pipe       ``cancel`` on the control pipe
2      SIGTERM to the child's group at once SIGTERM after ``cancel_grace`` if still running
3      SIGKILL after ``kill_grace``          SIGKILL after ``kill_grace``
4      reap; the slot gets a new child       same
=====  ===================================  ========================================

A child that returned by itself after ``cancel`` is reused; one that was signalled never
is (its state is unknown).  A child that dies by itself (out of memory, ``os._exit``)
fails its attempt as ``WorkerProcessDied``.  One that SIGKILL does not reap within
:data:`REAP_LIMIT` (uninterruptible I/O) is given up: its slot counts as lost until it
goes.  Escalation runs on the injected ``clock`` and the child's ``poll``, so unit tests
drive it with a fake child.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from zkq.coordinator.job import short
from zkq.worker.control import CANCELLED, Cancelled
from zkq.worker.pools import (
    Outcome,
    RevokedHook,
    StopPolicy,
    locate,
    revoked_outcome,
)
from zkq.worker.registry import JobContext, Registry

log = logging.getLogger(__name__)

#: how often a slot thread looks at its revocation while its child runs
POLL = 0.1
#: how long a new child may take to import the app
READY_LIMIT = 120.0
#: how long a SIGKILLed child may take to go before its slot is given up as lost
REAP_LIMIT = 30.0


class Child(Protocol):
    """One slot's child process, as the slot thread drives it (a fake one in unit tests)."""

    pid: int

    def send_job(self, message: tuple[Any, ...]) -> None: ...

    def send_cancel(self, job_id: str, reason: str) -> None: ...

    def poll(self, timeout: float) -> bool: ...

    def recv(self) -> tuple[str, Any]: ...

    def signal(self, signum: int) -> None: ...

    def reap(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` for the child to end; its exit code (None: still there)."""
        ...

    def retire(self) -> None:
        """Let an idle child go (it ends when its work pipe closes)."""
        ...


class SpawnedChild:
    def __init__(self, app: str | None, where: tuple[str, str]) -> None:
        from zkq.worker.process_child import child_main

        context = multiprocessing.get_context("spawn")
        self._work, child_work = context.Pipe(duplex=True)
        child_control, self._control = context.Pipe(duplex=False)
        # not a daemon, as ProcessPoolExecutor's processes were not: a handler may start
        # processes of its own (a daemon may not).  The pool's shutdown ends it, and the
        # parent-death signal does if the worker dies without one
        self._process = context.Process(
            target=child_main,
            args=(child_work, child_control, app, where, os.getpid()),
            name="zkq-slot",
        )
        self._process.start()
        child_work.close()
        child_control.close()
        self.pid = self._process.pid or 0
        # it is in its own process group once it says it is ready (setsid came first)
        if not self._work.poll(READY_LIMIT):
            self.signal(signal.SIGKILL)
            raise RuntimeError("the handler's process did not start in time")
        try:
            self._work.recv()
        except (EOFError, OSError):
            code = self.reap(REAP_LIMIT)
            raise RuntimeError(
                f"the handler's process exited while loading the app (exit code {code})"
            ) from None

    def send_job(self, message: tuple[Any, ...]) -> None:
        self._work.send(message)

    def send_cancel(self, job_id: str, reason: str) -> None:
        with contextlib.suppress(OSError):  # it is gone already
            self._control.send(("cancel", job_id, reason))

    def poll(self, timeout: float) -> bool:
        return self._work.poll(timeout)

    def recv(self) -> tuple[str, Any]:
        kind, value = self._work.recv()
        return kind, value

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)  # the child and whatever its handler started
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(self.pid, signum)

    def reap(self, timeout: float) -> int | None:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is not None:
            self._work.close()
            self._control.close()
        return code

    def retire(self) -> None:
        self._work.close()
        self._control.close()
        self._process.join(5.0)
        if self._process.exitcode is None:
            self.signal(signal.SIGKILL)
            self._process.join(REAP_LIMIT)


@dataclass
class _Attempt:
    job_id: str
    child: Child
    reason: str | None = None
    revoked_at: float = 0.0
    term_at: float | None = None
    kill_at: float | None = None


def _died(message: str) -> Outcome:
    return Outcome(ok=False, error={"type": "WorkerProcessDied", "message": message})


class ProcessSlots:
    def __init__(
        self,
        registry: Registry,
        app: str | None,
        size: int,
        policy: StopPolicy | None = None,
        on_revoked: RevokedHook | None = None,
        on_lost: Callable[[int], None] | None = None,
        spawn: Callable[[], Child] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.app = app
        self.size = size
        self.policy = policy or StopPolicy()
        self.on_revoked = on_revoked
        self.on_lost = on_lost
        self._clock = clock
        if spawn is None:
            where = locate(registry, app)
            spawn = lambda: SpawnedChild(app, where)  # noqa: E731
        self._spawn = spawn
        # every child is started by this one thread, which lives as long as the pool: the
        # parent-death signal fires when the thread that started a child ends
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zkq-spawner")
        self._lock = threading.Lock()
        self._idle: list[Child] = []
        self._uses: dict[int, int] = {}
        self._running: dict[str, _Attempt] = {}
        self._lost = 0
        self._closed = False

    # -- one attempt ------------------------------------------------------------------------
    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
        try:
            child = self._take()
        except Exception as exc:
            return _died(short(f"could not start the handler's process: {exc}") or "")
        timeout = ctx.control.timeout if ctx.control is not None else 300.0
        attempt = _Attempt(ctx.job_id, child)
        with self._lock:  # before the job is sent: a revocation may come at once
            self._running[ctx.job_id] = attempt
        if ctx.control is not None and ctx.control.cancelled:
            # revoked while the slot's child was being started (which may take a while):
            # the revocation found nothing to stop, and the handler must not start at all
            with self._lock:
                if self._running.get(ctx.job_id) is attempt:
                    del self._running[ctx.job_id]
            self._give_back(child)
            reason = ctx.control.reason or CANCELLED
            self._report(reason, "returned", 0.0)
            return revoked_outcome(reason, "returned", 0.0, None)
        try:
            try:
                child.send_job((job_type, payload, ctx, timeout))
            except Exception as exc:  # an unpicklable payload: nothing was written, reuse it
                self._give_back(child)
                message = f"could not pass the job to its process: {exc}"
                return Outcome(ok=False, error={"type": type(exc).__name__, "message": message})
            outcome = self._await(attempt, ctx)
        finally:
            with self._lock:  # not a newer attempt of the same job, on another slot
                if self._running.get(ctx.job_id) is attempt:
                    del self._running[ctx.job_id]
        return self._settle(attempt, outcome)

    def _await(self, attempt: _Attempt, ctx: JobContext) -> Outcome | None:
        """The child's outcome; None: the child died without one."""
        child = attempt.child
        while True:
            self._escalate(attempt)
            if not child.poll(POLL):
                continue
            try:
                kind, value = child.recv()
            except (EOFError, OSError):
                return None
            except Exception as exc:  # an outcome that does not unpickle here
                message = f"could not pass the result from its process: {exc}"
                return Outcome(ok=False, error={"type": type(exc).__name__, "message": message})
            if kind == "done":
                return value if isinstance(value, Outcome) else None
            if kind == "hb" and ctx.control is not None and value[0] == attempt.job_id:
                with contextlib.suppress(Cancelled, ValueError):  # revoked: escalation goes on
                    ctx.control.heartbeat(value[1])

    def _escalate(self, attempt: _Attempt) -> None:
        if attempt.reason is None or attempt.kill_at is not None:
            return
        now = self._clock()
        if attempt.term_at is None:
            grace = self.policy.cancel_grace if attempt.reason == CANCELLED else 0.0
            if now >= attempt.revoked_at + grace:
                attempt.term_at = now
                attempt.child.signal(signal.SIGTERM)
        elif now >= attempt.term_at + self.policy.kill_grace:
            attempt.kill_at = now
            attempt.child.signal(signal.SIGKILL)

    def _settle(self, attempt: _Attempt, outcome: Outcome | None) -> Outcome:
        child = attempt.child
        signalled = attempt.term_at is not None
        if outcome is not None and not signalled:
            self._give_back(child)  # returned by itself (cancelled or not): reused
        else:
            if outcome is not None:
                child.signal(signal.SIGKILL)  # returned after SIGTERM: never reused
            code = self._reap(child)
            if outcome is None and attempt.reason is None:
                return _died(f"the handler's process died (exit code {code})")
        if attempt.reason is None:
            assert outcome is not None
            return outcome
        end = "sigkill" if attempt.kill_at else "sigterm" if signalled else "returned"
        if outcome is None and not signalled:
            end = "died"
        seconds = self._clock() - attempt.revoked_at
        self._report(attempt.reason, end, seconds)
        return revoked_outcome(attempt.reason, end, seconds, outcome)

    def _report(self, reason: str, end: str, seconds: float) -> None:
        log.info("handler stopped (%s) after %.1fs by %s", reason, seconds, end)
        if self.on_revoked is not None:
            self.on_revoked(reason, end, seconds)

    def _reap(self, child: Child) -> int | None:
        code = child.reap(REAP_LIMIT)
        if code is not None:
            return code
        # not gone after SIGKILL (uninterruptible I/O): the slot is lost until it goes
        log.warning("the handler's process %d does not end: its slot is lost", child.pid)
        self._count_lost(+1)
        while code is None and not self._closed:
            code = child.reap(REAP_LIMIT)
        self._count_lost(-1)
        return code

    def _count_lost(self, change: int) -> None:
        with self._lock:
            self._lost += change
            lost = self._lost
        if self.on_lost is not None:
            self.on_lost(lost)

    # -- children -------------------------------------------------------------------------
    def _take(self) -> Child:
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            if self._idle:
                return self._idle.pop()
        return self._spawner.submit(self._spawn).result()

    def _give_back(self, child: Child) -> None:
        with self._lock:
            uses = self._uses.get(child.pid, 0) + 1
            limit = self.policy.max_tasks_per_child
            keep = not self._closed and not (limit and uses >= limit)
            if keep:
                self._uses[child.pid] = uses
                self._idle.append(child)
            else:
                self._uses.pop(child.pid, None)
        if not keep:
            child.retire()

    def revoke(self, job_id: str, reason: str) -> None:
        with self._lock:
            attempt = self._running.get(job_id)
            if attempt is None or attempt.reason is not None:
                return
            attempt.reason = reason
            attempt.revoked_at = self._clock()
        attempt.child.send_cancel(job_id, reason)

    @property
    def lost_slots(self) -> int:
        return self._lost

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            running = [a.child for a in self._running.values()]
        if not wait:
            for child in running:
                child.signal(signal.SIGKILL)
        for child in idle:
            child.retire()
        self._spawner.shutdown(wait=wait)


#: the name this pool had before it could stop its children
ProcessPool = ProcessSlots

"""Where handlers run: threads (I/O-bound work) or processes (CPU-bound work).

A CPU-bound handler in a thread holds the GIL and can starve kazoo's ping thread into a
false session expiry; in ``--pool process`` it runs in a child process started with
``spawn`` (never ``fork``: the parent has kazoo's threads and sockets), so the worker's
session stays healthy whatever the handler does (:mod:`zkq.worker.process_slots`: one
child per slot).

**Stopping a revoked attempt** (:meth:`Pool.revoke`, see :class:`StopPolicy`): only a
process can always be stopped: its slot's child is signalled (SIGTERM, then SIGKILL) and
replaced.  A thread cannot be killed: it gets an exception raised into it, best effort, and
when that does not land either its slot is *lost* (:class:`ThreadPool`).

Either way a pool runs handlers from the one :class:`~zkq.worker.registry.Registry` it is
given, the one its worker checked the types against.  A child process cannot be handed
the registry object (handlers need not pickle), so it imports the app, then the module
where the parent found that same registry, and looks handlers up there; a registry that
lives in no importable module cannot serve a process pool, which is said at start.

A handler's exception becomes an :class:`Outcome` with the traceback; nothing a handler
does can raise out of :meth:`Pool.run`.  That includes ``SystemExit``, ``KeyboardInterrupt``
and any other ``BaseException``: raised in a slot thread they would end that thread alone
(the process's own signals reach only its main thread), silently losing a slot and leaving
its attempt unrecorded until the leader's timeout.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from zkq.coordinator.job import MESSAGE_LIMIT, JobSpec, short, truncate_traceback
from zkq.worker.control import CANCELLED, Cancelled, Retry, stop_exception
from zkq.worker.registry import Handler, JobContext, Registry, registry
from zkq.worker.retrying import floor_of

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    ok: bool
    result: Any = None
    error: dict[str, str] | None = None
    children: list[JobSpec] = field(default_factory=list)
    #: the least delay before a retry that the failure asked for (``zkq.Retry(delay=)``
    #: or a Retry-After it carried); None: the job's retry policy alone decides
    retry_delay: float | None = None
    #: the handler raised ``zkq.Retry``
    retry: bool = False


def load_app(app: str | None) -> Registry:
    """Import the user's app and return the registry to serve.

    ``module`` serves the registry ``@zkq.handler`` fills; ``module:name`` serves the
    :class:`Registry` the module holds under ``name`` (an app with a registry of its own).
    The working directory goes on the import path first, as ``celery -A`` and ``rq worker``
    do, so ``zkq worker --app myapp`` works from the app's folder.
    """
    if not app:
        return registry
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    module_name, _, attr = app.partition(":")
    module = importlib.import_module(module_name)
    if not attr:
        return registry
    found = getattr(module, attr, None)
    if not isinstance(found, Registry):
        raise ImportError(f"{module_name}.{attr} is not a zkq Registry (in --app {app})")
    return found


def execute(handlers: Registry, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
    """Run one handler, catching everything it raises, ``BaseException`` included (a
    handler's ``sys.exit()`` fails its attempt; it does not end the slot)."""
    try:
        handler: Handler[Any] = handlers.get(job_type)
        result = handler(payload, ctx)
        return Outcome(ok=True, result=result, children=list(ctx.children))
    except BaseException as exc:  # see the module docstring
        return failure(exc, traceback.format_exc())


def failure(exc: BaseException, trace: str | None = None) -> Outcome:
    """The outcome of an attempt that raised ``exc``."""
    error = {
        "type": type(exc).__name__,
        "message": short(str(exc), 4 * MESSAGE_LIMIT) or type(exc).__name__,
    }
    if trace:
        error["traceback"] = truncate_traceback(trace)
    retry = isinstance(exc, Retry)
    return Outcome(ok=False, error=error, retry_delay=floor_of(exc), retry=retry)


class Pool(Protocol):
    #: where the handlers come from (and their declared defaults, for ``ctx.spawn``)
    registry: Registry

    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
        """Run the handler to its end and return how it ended.  ``ctx.control`` (set by
        the pipeline) carries the attempt's heartbeats out and its stop word in."""
        ...

    def revoke(self, job_id: str, reason: str) -> None:
        """Stop the attempt of ``job_id`` that :meth:`run` is running, for ``reason``
        (:mod:`zkq.worker.control`): the pipeline has already set its control's stop word.
        Returns at once; the escalation (grace, SIGTERM, SIGKILL, or a lost slot) goes on
        in the pool, and :meth:`run` returns once the slot is free again."""
        ...

    @property
    def lost_slots(self) -> int:
        """Slots whose handler could not be stopped and still runs (thread pools)."""
        ...

    def shutdown(self, wait: bool = True) -> None: ...


@dataclass(frozen=True)
class StopPolicy:
    """How a pool stops a revoked attempt (``zkq worker --cancel-grace/--kill-grace``).

    ``cancel_grace``: how long a cancelled handler has to return by itself before it is
    stopped by force (a revoked lease or a lost session is stopped by force at once: another
    worker may already run the job).  ``kill_grace``: how long the forced stop (SIGTERM, or
    an exception raised into a thread) has before SIGKILL, or before a thread slot is given
    up as lost.  ``max_tasks_per_child``: a process slot's child is replaced after that many
    attempts (0: never), for apps that leak."""

    cancel_grace: float = 5.0
    kill_grace: float = 5.0
    max_tasks_per_child: int = 0

    def __post_init__(self) -> None:
        if not (self.cancel_grace >= 0 and self.kill_grace >= 0):
            raise ValueError("the cancel and kill graces are seconds >= 0")
        if self.max_tasks_per_child < 0:
            raise ValueError("max_tasks_per_child must be zero (never) or more")


#: ``on_revoked(reason, end, seconds)``: a revoked attempt's handler stopped (``end``:
#: returned, async_exc, sigterm, sigkill, died) or was given up (lost)
RevokedHook = Callable[[str, str, float], None]


def revoked_outcome(reason: str, end: str, seconds: float, outcome: Outcome | None) -> Outcome:
    """The outcome of an attempt stopped for ``reason``: whatever the handler returned is
    discarded (the attempt is no longer ours to record), it fails as Cancelled/LeaseLost."""
    exc = stop_exception(reason)
    message = f"{exc}: handler stopped after {seconds:.1f}s ({end})"
    error = {"type": type(exc).__name__, "message": message, "reason": reason, "end": end}
    trace = (outcome.error or {}).get("traceback") if outcome is not None else None
    if trace:
        error["traceback"] = trace
    return Outcome(ok=False, error=error)


@dataclass
class _Running:
    """A thread slot's attempt, as its revoker sees it."""

    job_id: str
    thread_id: int
    finished: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None
    revoked_at: float = 0.0
    async_sent: bool = False
    lost: bool = False
    end: str = "returned"


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    # best effort: lands at the thread's next bytecode, never inside a blocking C call;
    # None clears one that is pending and has not landed yet
    target = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


class ThreadPool:
    """Runs the handler on the calling thread (an attempt thread of the worker).

    A revoked attempt is asked to stop (its ``ctx.control``), then, after ``cancel_grace``
    (at once for a lease or session), :class:`~zkq.worker.control.LeaseLost` or
    :class:`~zkq.worker.control.Cancelled` is raised into its thread; if it has still not
    returned after ``kill_grace`` its slot is *lost*: counted in :attr:`lost_slots` (the
    worker publishes it, the leader assigns around it) until the handler returns, if ever.
    :meth:`run` returns only when the thread is back, so the pipeline counts it busy.
    """

    def __init__(
        self,
        registry: Registry,
        policy: StopPolicy | None = None,
        on_revoked: RevokedHook | None = None,
        on_lost: Callable[[int], None] | None = None,
    ) -> None:
        self.registry = registry
        self.policy = policy or StopPolicy()
        self.on_revoked = on_revoked
        #: called with the new count whenever :attr:`lost_slots` changes
        self.on_lost = on_lost
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._lost = 0

    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
        running = _Running(ctx.job_id, threading.get_ident())
        with self._lock:
            self._running[ctx.job_id] = running
        if ctx.control is not None and ctx.control.cancelled:
            # revoked before it was registered here: the revocation found nothing to stop,
            # and the handler must not start at all
            self._finish(running)
            reason = ctx.control.reason or CANCELLED
            self._report(reason, "returned", 0.0)
            return revoked_outcome(reason, "returned", 0.0, None)
        outcome: Outcome | None = None
        try:
            outcome = execute(self.registry, job_type, payload, ctx)
            self._finish(running)
        except Cancelled as exc:  # raised into us after the handler had returned
            self._finish(running)
            outcome = outcome or failure(exc)
        if running.reason is None:
            return outcome
        seconds = time.monotonic() - running.revoked_at
        if running.lost:
            log.warning("a lost slot came back after %.1fs (job %s)", seconds, running.job_id)
        else:
            self._report(running.reason, running.end, seconds)
        return revoked_outcome(running.reason, running.end, seconds, outcome)

    def _finish(self, running: _Running) -> None:
        with self._lock:
            if running.finished.is_set():
                return
            running.finished.set()
            if running.async_sent:
                _set_async_exc(running.thread_id, None)
            if self._running.get(running.job_id) is running:  # not a newer attempt's
                del self._running[running.job_id]
            if running.lost:
                self._lost -= 1
                lost = self._lost
        if running.lost and self.on_lost is not None:
            self.on_lost(lost)

    def revoke(self, job_id: str, reason: str) -> None:
        with self._lock:
            running = self._running.get(job_id)
            if running is None or running.reason is not None:
                return
            running.reason = reason
            running.revoked_at = time.monotonic()
        threading.Thread(
            target=self._escalate, args=(running,), name=f"revoke-{job_id}", daemon=True
        ).start()

    def _escalate(self, running: _Running) -> None:
        reason = running.reason or CANCELLED
        grace = self.policy.cancel_grace if reason == CANCELLED else 0.0
        if running.finished.wait(grace):
            return
        with self._lock:
            if running.finished.is_set():
                return
            running.async_sent = True
            running.end = "async_exc"
            _set_async_exc(running.thread_id, type(stop_exception(reason)))
        if running.finished.wait(self.policy.kill_grace):
            return
        with self._lock:
            if running.finished.is_set():
                return
            running.lost = True
            running.end = "lost"
            self._lost += 1
            lost = self._lost
        log.warning("handler of job %s did not stop (%s): its slot is lost", running.job_id, reason)
        self._report(reason, "lost", time.monotonic() - running.revoked_at)
        if self.on_lost is not None:
            self.on_lost(lost)

    def _report(self, reason: str, end: str, seconds: float) -> None:
        log.info("handler stopped (%s) after %.1fs by %s", reason, seconds, end)
        if self.on_revoked is not None:
            self.on_revoked(reason, end, seconds)

    @property
    def lost_slots(self) -> int:
        return self._lost

    def shutdown(self, wait: bool = True) -> None:
        return None


def locate(registry: Registry, app: str | None) -> tuple[str, str]:
    """Where a child process finds ``registry``: a module and the name it has there."""
    # the app's module first, where an app keeps a registry of its own; then any module
    # (the default one is worker.registry's).  Not __main__: a spawned child has another.
    app_module = app.partition(":")[0] if app else None
    names = [app_module] if app_module in sys.modules else []
    names += sorted(name for name in sys.modules if name not in ("__main__", "__mp_main__"))
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is registry:
                return name, attr
    raise ValueError(
        "a process pool's registry must be a module-level name, so that its processes can "
        "import it: define it at the top of the app's module"
    )


def make_pool(
    kind: str,
    registry: Registry,
    app: str | None,
    size: int,
    policy: StopPolicy | None = None,
    on_revoked: RevokedHook | None = None,
    on_lost: Callable[[int], None] | None = None,
) -> Pool:
    if kind == "thread":
        return ThreadPool(registry, policy, on_revoked, on_lost)
    if kind == "process":
        from zkq.worker.process_slots import ProcessSlots

        return ProcessSlots(registry, app, size, policy, on_revoked, on_lost)
    raise ValueError(f"pool must be 'thread' or 'process', not {kind!r}")

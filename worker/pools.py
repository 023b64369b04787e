"""Where handlers run: threads (I/O-bound work) or processes (CPU-bound work).

A CPU-bound handler in a thread holds the GIL and can starve kazoo's ping thread into a
false session expiry; in ``--pool process`` it runs in a child process started with
``spawn`` (never ``fork``: the parent has kazoo's threads and sockets), so the worker's
session stays healthy whatever the handler does.

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

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

from zkq.coordinator.job import MESSAGE_LIMIT, JobSpec, short, truncate_traceback
from zkq.worker.control import Retry
from zkq.worker.registry import Handler, JobContext, Registry, registry
from zkq.worker.retrying import floor_of


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


class ThreadPool:
    """Runs the handler on the calling thread (an attempt thread of the worker)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
        return execute(self.registry, job_type, payload, ctx)

    def revoke(self, job_id: str, reason: str) -> None:
        return None

    @property
    def lost_slots(self) -> int:
        return 0

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


#: in a child process: the registry its parent serves, found by :func:`_child_init`
_child_registry: Registry | None = None


def _child_init(app: str | None, where: tuple[str, str]) -> None:
    # the worker decides when its children stop: a SIGTERM to the process group (or a
    # Ctrl-C) must not kill a job mid-way while the parent drains
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    load_app(app)
    global _child_registry
    module, attr = where
    _child_registry = getattr(importlib.import_module(module), attr)


def _execute_in_child(job_type: str, payload: Any, ctx: JobContext) -> Outcome:
    assert _child_registry is not None, "the process pool's initializer did not run"
    return execute(_child_registry, job_type, payload, ctx)


class ProcessPool:
    def __init__(self, registry: Registry, app: str | None, size: int) -> None:
        self.registry = registry
        self.app = app
        self.size = size
        self._where = locate(registry, app)
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(self.app, self._where),
        )

    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
        with self._lock:
            executor = self._executor
        try:
            future: Future[Outcome] = executor.submit(_execute_in_child, job_type, payload, ctx)
            return future.result()
        except BrokenProcessPool:
            # a child died (killed, out of memory): this attempt fails, the pool is renewed
            with self._lock:
                if self._executor is executor:
                    self._executor = self._new_executor()
            return Outcome(
                ok=False,
                error={"type": "WorkerProcessDied", "message": "the handler's process died"},
            )
        except Exception as exc:
            # what could not cross the process boundary: an unpicklable payload or result
            return Outcome(
                ok=False,
                error={
                    "type": type(exc).__name__,
                    "message": short(f"could not pass the job to or from its process: {exc}") or "",
                },
            )

    def revoke(self, job_id: str, reason: str) -> None:
        return None

    @property
    def lost_slots(self) -> int:
        return 0

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor = self._executor
        if not wait:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
        executor.shutdown(wait=wait, cancel_futures=not wait)


def make_pool(kind: str, registry: Registry, app: str | None, size: int) -> Pool:
    if kind == "thread":
        return ThreadPool(registry)
    if kind == "process":
        return ProcessPool(registry, app, size)
    raise ValueError(f"pool must be 'thread' or 'process', not {kind!r}")

"""Where handlers run: threads (I/O-bound work) or processes (CPU-bound work).

A CPU-bound handler in a thread holds the GIL and can starve kazoo's ping thread into a
false session expiry; in ``--pool process`` it runs in a child process started with
``spawn`` (never ``fork``: the parent has kazoo's threads and sockets), so the worker's
session stays healthy whatever the handler does.

Either way a handler's exception becomes an :class:`Outcome` with the traceback; nothing a
handler does can raise out of :meth:`Pool.run`.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import threading
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

from zkq.coordinator.job import MESSAGE_LIMIT, short, truncate_traceback
from zkq.coordinator.store import JobSpec
from zkq.worker.registry import JobContext, registry


@dataclass
class Outcome:
    ok: bool
    result: Any = None
    error: dict[str, str] | None = None
    children: list[JobSpec] = field(default_factory=list)


def load_app(app: str | None) -> None:
    """Import the user's module so that its ``@handler`` decorators run."""
    if app:
        importlib.import_module(app)


def execute(job_type: str, payload: Any, ctx: JobContext) -> Outcome:
    """Run one handler, catching everything it raises."""
    try:
        result = registry.get(job_type)(payload, ctx)
        return Outcome(ok=True, result=result, children=list(ctx.children))
    except Exception as exc:
        return Outcome(
            ok=False,
            error={
                "type": type(exc).__name__,
                "message": short(str(exc), 4 * MESSAGE_LIMIT) or type(exc).__name__,
                "traceback": truncate_traceback(traceback.format_exc()),
            },
        )


class Pool(Protocol):
    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome: ...

    def shutdown(self, wait: bool = True) -> None: ...


class ThreadPool:
    """Runs the handler on the calling thread (an attempt thread of the worker)."""

    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
        return execute(job_type, payload, ctx)

    def shutdown(self, wait: bool = True) -> None:
        return None


def _child_init(app: str | None) -> None:
    # the worker decides when its children stop: a SIGTERM to the process group (or a
    # Ctrl-C) must not kill a job mid-way while the parent drains
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    load_app(app)


class ProcessPool:
    def __init__(self, app: str | None, size: int) -> None:
        self.app = app
        self.size = size
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            initargs=(self.app,),
        )

    def run(self, job_type: str, payload: Any, ctx: JobContext) -> Outcome:
        with self._lock:
            executor = self._executor
        try:
            future: Future[Outcome] = executor.submit(execute, job_type, payload, ctx)
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

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor = self._executor
        if not wait:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
        executor.shutdown(wait=wait, cancel_futures=not wait)


def make_pool(kind: str, app: str | None, size: int) -> Pool:
    if kind == "thread":
        return ThreadPool()
    if kind == "process":
        return ProcessPool(app, size)
    raise ValueError(f"pool must be 'thread' or 'process', not {kind!r}")

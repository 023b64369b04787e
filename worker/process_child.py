"""The child side of a process slot (:mod:`zkq.worker.process_slots`): one spawned process
that runs one handler at a time for its slot.

- It calls ``os.setsid()``: the child and any subprocess its handler starts form one
  process group, which the parent signals as a whole; and the terminal's or a supervisor's
  signals to the worker's group no longer reach it (the parent decides when it stops).
- ``PR_SET_PDEATHSIG=SIGKILL``: a child never outlives a ``kill -9``'d worker.  It fires
  when the *thread* that started the child ends, so every child is started by the pool's
  one long-lived spawner thread; and the parent may have died before ``prctl`` ran, so the
  parent pid is checked after it.  Where prctl does not exist, the control pipe's EOF ends
  the child.
- Two pipes: *work* (a job in; ``("hb", seconds)`` renewals and ``("done", outcome)`` out)
  and *control* (``("cancel", job_id, reason)`` in: sets the running handler's
  ``ctx.control``, so ``ctx.cancelled`` turns true and its next ``heartbeat()`` raises).
- SIGTERM raises :class:`~zkq.worker.control.LeaseLost`/``Cancelled`` in the main thread,
  where the handler runs: a handler in ``time.sleep`` is woken by it (PEP 475 retries a
  sleep only when the signal handler does not raise).  A handler spinning in C holding the
  GIL never runs it; the parent's SIGKILL ends that one.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from zkq.worker.control import SHUTDOWN, AttemptControl, stop_exception
from zkq.worker.pools import execute, failure, load_app
from zkq.worker.registry import JobContext, Registry

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the control pipe's EOF still ends us
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before prctl ran: nobody would ever reap us


class _Child:
    def __init__(self, work: Connection, control: Connection, registry: Registry) -> None:
        self.work = work
        self.control = control
        self.registry = registry
        self._send_lock = threading.Lock()
        self._current: AttemptControl | None = None

    def send(self, message: tuple[str, Any]) -> None:
        with self._send_lock:  # a handler may renew from a thread of its own
            self.work.send(message)

    def on_sigterm(self, _signum: int, _frame: FrameType | None) -> None:
        current = self._current
        raise stop_exception((current.reason if current else None) or SHUTDOWN)

    def read_control(self) -> None:
        while True:
            try:
                _, job_id, reason = self.control.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone
            current = self._current
            if current is not None and current.job_id == job_id:
                current.cancel(reason)

    def _renewals_of(self, job_id: str) -> Callable[[float], None]:
        def renew(seconds: float) -> None:
            self.send(("hb", (job_id, seconds)))

        return renew

    def serve(self) -> None:
        while True:
            try:
                job_type, payload, ctx, timeout = self.work.recv()
            except (EOFError, OSError):
                return  # the parent retired us (or died)
            assert isinstance(ctx, JobContext)
            job_id = ctx.job_id
            # each renewal names its attempt's job: a thread the handler left behind must
            # not renew the lease of whatever this process runs next
            control = AttemptControl(job_id, timeout, self._renewals_of(job_id))
            ctx.control = control
            self._current = control
            outcome = execute(self.registry, job_type, payload, ctx)
            self._current = None
            control.cancel(SHUTDOWN)  # over: a straggler's renewal raises, and sends nothing
            try:
                self.send(("done", outcome))
            except Exception as exc:  # a result that does not pickle
                self.send(("done", failure(exc)))


def child_main(
    work: Connection,
    control: Connection,
    app: str | None,
    where: tuple[str, str],
    parent_pid: int,
) -> None:
    """The spawned child's entry point."""
    os.setsid()
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    load_app(app)
    module, attr = where
    child = _Child(work, control, getattr(importlib.import_module(module), attr))
    signal.signal(signal.SIGTERM, child.on_sigterm)
    threading.Thread(target=child.read_control, name="control", daemon=True).start()
    child.send(("ready", os.getpid()))
    child.serve()

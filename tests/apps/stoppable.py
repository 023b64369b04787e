"""Handlers that do not stop by themselves, for the pools' stop tests.  Each writes its
process id to ``payload["pidfile"]`` first, so a test can check that the process is gone."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

from zkq.worker.registry import JobContext, Registry

registry = Registry()


def _note_pid(payload: Any) -> None:
    with open(payload["pidfile"], "w") as out:
        out.write(str(os.getpid()))


@registry.handler("sleeps")
def sleeps(payload: Any, ctx: JobContext) -> None:
    _note_pid(payload)
    time.sleep(10**6)  # woken only by SIGTERM's exception


@registry.handler("spins-in-c")
def spins_in_c(payload: Any, ctx: JobContext) -> Any:
    _note_pid(payload)
    # minutes of C code holding the GIL that never looks at signals, so SIGTERM's Python
    # handler cannot run (a catastrophic ``re`` match would not do: ``re`` checks signals
    # while it backtracks); a huge str -> int conversion is quadratic on 3.11
    sys.set_int_max_str_digits(0)
    return int("7" * 10**7) % 10


@registry.handler("ignores-term")
def ignores_term(payload: Any, ctx: JobContext) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _note_pid(payload)
    while True:
        time.sleep(0.05)


@registry.handler("blocks")
def blocks(payload: Any, ctx: JobContext) -> None:
    threading.Event().wait()  # in a thread slot: no async exception lands here


@registry.handler("noop")
def noop(payload: Any, ctx: JobContext) -> int:
    return os.getpid()

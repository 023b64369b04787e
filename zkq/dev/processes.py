"""Supervision of plain child processes by pid, from this process or a later one.

A :class:`ManagedProcess` is a record (name, pid, start time, argv, log), not a live handle:
it survives a round trip through JSON, so ``zkq dev down`` in a new shell can stop what
``zkq dev up`` started.  Two facts make acting on a bare pid safe:

- **Identity.**  A pid is recycled once its process is reaped.  We record the process's
  start time (field 22 of ``/proc/<pid>/stat``, clock ticks since boot) and act only while
  the pid still has that start time, so a recycled pid is never signalled.  Single-process
  signals go through a pidfd opened *before* the check, which closes the check-then-kill
  race.
- **Groups.**  Each process starts in its own session (``start_new_session=True``), so it
  leads a process group whose id is its pid.  Stopping sweeps the whole group: a worker's
  pool children are stopped even when the worker itself was killed with SIGKILL.

Output goes to a log file opened in append mode, never to a pipe: a leftover process can
then never hold a test runner's stdout open (which makes pytest or CI hang at exit).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal as signals
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from zkq.dev.waiting import wait_until

#: Popen handles of the children this Python process started, keyed by (pid, start ticks).
#: Holding the handle keeps subprocess from reaping our children behind our back (it polls
#: garbage-collected Popen objects), so we can read their exit codes.
_CHILDREN: dict[tuple[int, int], subprocess.Popen[bytes]] = {}


class ProcStat(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` that supervision needs."""

    state: str  # R, S, D, T, Z (zombie), X (dead), ...
    pgrp: int
    session: int
    start_ticks: int


def read_stat(pid: int) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; ``None`` when there is no such process."""
    return read_stat_path(Path(f"/proc/{pid}/stat"))


def read_stat_path(path: Path) -> ProcStat | None:
    """Parse a process's or a thread's ``stat`` file; ``None`` when it is gone."""
    try:
        raw = path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces and ")": split
    # after the *last* ")".  What follows starts at field 3 (state).
    fields = raw.rpartition(")")[2].split()
    return ProcStat(
        state=fields[0], pgrp=int(fields[2]), session=int(fields[3]), start_ticks=int(fields[19])
    )


def _is_live_state(state: str) -> bool:
    # A zombie has exited; it only waits for its parent to reap it.
    return state not in ("Z", "X", "x")


@dataclass
class ProcessSpec:
    """How to start one process.

    ``env`` entries are laid over this process's environment (so ``PATH`` and the venv
    stay); ``cwd`` defaults to the current directory.
    """

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None


@dataclass
class ManagedProcess:
    """A started process, identified by pid *and* start time."""

    name: str
    pid: int
    argv: list[str]
    log_path: Path
    started_at: float  # wall clock (time.time()), for humans
    start_ticks: int  # /proc/<pid>/stat field 22, for identity
    exit_code: int | None = field(default=None)  # known only to the parent that reaped it

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "argv": list(self.argv),
            "log_path": str(self.log_path),
            "started_at": self.started_at,
            "start_ticks": self.start_ticks,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManagedProcess:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            argv=[str(a) for a in data["argv"]],
            log_path=Path(data["log_path"]),
            started_at=float(data["started_at"]),
            start_ticks=int(data["start_ticks"]),
            exit_code=None if data.get("exit_code") is None else int(data["exit_code"]),
        )

    # -- probing --------------------------------------------------------------------------

    def alive(self) -> bool:
        """True while the process we started runs (a zombie or a recycled pid is not it)."""
        if self.exit_code is not None:
            return False
        key = (self.pid, self.start_ticks)
        popen = _CHILDREN.get(key)
        if popen is not None:
            # Our own unreaped child: its pid cannot have been recycled.  poll() reaps it
            # if it has exited (waitpid WNOHANG) and gives us its exit code.
            code = popen.poll()
            if code is None:
                return True
            _CHILDREN.pop(key, None)
            self.exit_code = code
            return False
        stat = read_stat(self.pid)
        if stat is None or stat.start_ticks != self.start_ticks:
            return False
        if not _is_live_state(stat.state):
            self._reap_if_child()
            return False
        return True

    def _reap_if_child(self) -> None:
        # Only called once the start time proved the zombie is ours, so we never reap a
        # child that belongs to some other part of this program.
        with contextlib.suppress(ChildProcessError):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.exit_code = os.waitstatus_to_exitcode(status)

    def group_members(self) -> list[int]:
        """Live processes still in this process's group (itself included while alive).

        The kernel does not hand out a pid while a process group or session of that number
        has members.  So if the pid now names a *different* process, our group had emptied
        before it was born, and whatever is in group ``pid`` now is not ours.  Members must
        also be in our session and younger than the leader.
        """
        leader = read_stat(self.pid)
        if leader is not None and leader.start_ticks != self.start_ticks:
            return []
        found: list[int] = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = read_stat(int(entry.name))
            if (
                stat is not None
                and stat.pgrp == self.pid
                and stat.session == self.pid
                and stat.start_ticks >= self.start_ticks
                and _is_live_state(stat.state)
            ):
                found.append(int(entry.name))
        return found

    def rss_bytes(self) -> int | None:
        """Resident memory of the process itself (not its children); None when not alive."""
        if not self.alive():
            return None
        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, for error messages."""
        return tail(self.log_path, lines)

    # -- signalling -----------------------------------------------------------------------

    def signal(self, sig: int, group: bool = False) -> bool:
        """Send ``sig`` to the process (or its whole group); False when it is not alive."""
        if not self.alive():
            return False
        if not group:
            return _signal_verified(self.pid, self.start_ticks, sig)
        # The leader was alive a moment ago, so the group number is still ours: the kernel
        # does not reuse a pid while it names a live process group.
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill(self, group: bool = False) -> bool:
        """SIGKILL, like ``kill -9 <pid>``: the process only unless ``group``."""
        return self.signal(signals.SIGKILL, group=group)

    def pause(self, timeout: float = 10.0) -> bool:
        """SIGSTOP the whole group: the node looks hung (its ZooKeeper session expires).

        Returns once every thread of the group has stopped: the kernel stops a running
        thread only at its next entry to or exit from the kernel, so right after ``killpg``
        a busy server can still answer a request on another core.
        """
        if not self.signal(signals.SIGSTOP, group=True):
            return False
        wait_until(
            lambda: all(_all_threads_stopped(pid) for pid in self.group_members()),
            timeout,
            what=f"every thread of {self.name} (group {self.pid}) to stop",
        )
        return True

    def resume(self) -> bool:
        return self.signal(signals.SIGCONT, group=True)

    def wait(self, timeout: float) -> int | None:
        """Wait until the process has exited; its exit code when we were its parent."""
        wait_until(lambda: not self.alive(), timeout, what=f"{self.name} (pid {self.pid}) to exit")
        return self.exit_code

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, wait up to ``timeout``, then SIGKILL whatever is left."""
        stop_all([self], timeout)

    def _terminate_group(self, sig: int) -> None:
        # One signal per process: a second SIGTERM may mean "hurry" to a draining service.
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
                # A paused (SIGSTOPped) process would only see SIGTERM once continued.
                os.killpg(self.pid, signals.SIGCONT)
            return
        # The leader is gone but its children may live on (e.g. after kill -9): signal
        # each verified member by pid rather than the bare group number.
        for pid in self.group_members():
            stat = read_stat(pid)
            if stat is not None:
                _signal_verified(pid, stat.start_ticks, sig)
                _signal_verified(pid, stat.start_ticks, signals.SIGCONT)

    def _finished(self) -> bool:
        # alive() first: it reaps our own child, which group_members() would otherwise
        # skip as a zombie anyway.
        return not self.alive() and not self.group_members()


def _all_threads_stopped(pid: int) -> bool:
    """Whether each thread of ``pid`` is stopped (T, t) or gone (Z, X, or no such task)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return True
    for tid in tasks:
        stat = read_stat_path(Path(f"/proc/{pid}/task/{tid}/stat"))
        if stat is not None and stat.state not in ("T", "t", "Z", "X", "x"):
            return False
    return True


def _signal_verified(pid: int, start_ticks: int, sig: int) -> bool:
    """Signal ``pid`` only if it is still the process that started at ``start_ticks``."""

    def is_ours() -> bool:
        stat = read_stat(pid)
        return stat is not None and stat.start_ticks == start_ticks and _is_live_state(stat.state)

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except OSError:
        # No pidfd (Linux before 5.3): check, then kill; a tiny window remains.
        if not is_ours():
            return False
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True
    try:
        # The pidfd pins the process we opened: if the start time matches now, the signal
        # goes to that process even if the pid is recycled in between.
        if not is_ours():
            return False
        signals.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def stop_all(processes: Iterable[ManagedProcess], timeout: float = 10.0) -> None:
    """Stop several processes in parallel: one deadline for all, not one each.

    SIGTERM (and SIGCONT) to every group, wait up to ``timeout`` for all of them to be gone,
    then SIGKILL what is left and wait again.  Processes that already died are fine: their
    leftover group members are still swept.
    """
    procs = list(processes)
    for proc in procs:
        proc._terminate_group(signals.SIGTERM)
    try:
        wait_until(
            lambda: all(p._finished() for p in procs),
            timeout,
            what="processes to exit after SIGTERM",
        )
        return
    except TimeoutError:
        pass
    for proc in procs:
        if not proc._finished():
            proc._terminate_group(signals.SIGKILL)
    wait_until(
        lambda: all(p._finished() for p in procs),
        10.0,
        what="processes to exit after SIGKILL: "
        + ", ".join(f"{p.name} (pid {p.pid})" for p in procs if not p._finished()),
    )


def start(spec: ProcessSpec) -> ManagedProcess:
    """Start ``spec`` detached: own session, stdin from /dev/null, output appended to its log."""
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = None if spec.env is None else {**os.environ, **spec.env}
    with open(spec.log_path, "ab") as log:
        # A header per start: logs are appended to, so restarts stay readable.
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"=== {stamp} zkq: starting {spec.name}: {shlex.join(spec.argv)}\n".encode())
        log.flush()
        popen = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.cwd,
            start_new_session=True,
            close_fds=True,
        )
    started_at = time.time()
    # Popen returns after exec succeeded; the child is unreaped, so its stat is there even
    # if it already exited (as a zombie).  Start time is set at fork and kept across exec.
    stat = read_stat(popen.pid)
    if stat is None:  # pragma: no cover - an unreaped child always has a /proc entry
        raise RuntimeError(f"started {spec.name} as pid {popen.pid} but /proc has no entry")
    _CHILDREN[(popen.pid, stat.start_ticks)] = popen
    return ManagedProcess(
        name=spec.name,
        pid=popen.pid,
        argv=list(spec.argv),
        log_path=spec.log_path,
        started_at=started_at,
        start_ticks=stat.start_ticks,
    )


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ("" if it does not exist)."""
    try:
        with open(path, "rb") as f:
            # Read at most the last 64 KiB: logs can be large.
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

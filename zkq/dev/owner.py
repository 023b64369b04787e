"""Processes tied to the process that owns them, so nothing outlives a killed owner.

Every member the dev launcher starts runs in a session of its own (so ``down`` can stop its
whole group, and so ``zkq dev up`` can return and leave the cluster up): when whatever
started it dies, it is reparented, not killed.  A test run that is killed halfway (a CI
timeout, ``kill -9``, the OOM killer) would leave JVMs, MariaDB, HAProxy and gunicorn up for
the next run to trip over.  An owner ties them to itself:

- **A mark.**  The owner adds its token (``<pid>:<start ticks>``: the start time makes it
  survive pid reuse) to ``ZKQ_DEV_OWNERS`` in its environment.  Every process it starts,
  and everything *those* start (the bench CLI's cluster, a daemonised ``zkq dev up``, a
  nested test run), inherits it: the kernel keeps it in ``/proc/<pid>/environ``, whatever
  session or parent the process ends up with.  So "what did this owner start" is a scan,
  not a record someone may have failed to write.
- **An entry** ``<registry>/<pid>-<ticks>/`` in a well-known directory, holding whatever
  the owner wants removed with it (a test run puts its temporary directories there).
- **A watchdog**, ``python -m zkq.dev.owner watch``, in its own session and without the
  mark: it waits on a pidfd for the owner to exit, then kills every marked process and
  removes the entry (unless the owner left a ``keep`` file in it, after a clean end).
- **A sweep** at the next start (:func:`sweep_stale`) for when the watchdog died too.

Only a *dead* owner's processes are ever killed, by pid verified with its start time, never
by name: other runs on the same machine, from other checkouts, own theirs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zkq.dev.processes import _is_live_state, _signal_verified, read_stat
from zkq.dev.waiting import wait_until

#: space-separated tokens of every owner up the chain (a test run inside a test run)
OWNERS_ENV = "ZKQ_DEV_OWNERS"
#: where owners register; one place for every checkout on the machine, so any run's start
#: sweeps what a killed run of another checkout left
REGISTRY_ENV = "ZKQ_DEV_OWNER_REGISTRY"
#: a file an owner leaves in its entry to keep it (a failed run's logs) until a next sweep
KEEP = "keep"


def default_registry() -> Path:
    return Path(os.environ.get(REGISTRY_ENV) or Path(tempfile.gettempdir(), "zkq-dev-owners"))


def token_of(pid: int) -> str | None:
    stat = read_stat(pid)
    return None if stat is None else f"{pid}:{stat.start_ticks}"


def owner_alive(token: str) -> bool:
    pid, _, ticks = token.partition(":")
    stat = read_stat(int(pid))
    return stat is not None and str(stat.start_ticks) == ticks and stat.state not in "ZXx"


def marked(token: str) -> dict[int, int]:
    """Live processes that carry ``token`` in their environment: pid -> start ticks."""
    wanted = f"{OWNERS_ENV}=".encode()
    found: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        # The start time read before the environment and checked after it: a pid that
        # died and was reused between the reads is not taken for the one that had the mark.
        before = read_stat(int(entry.name))
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:  # gone, a kernel thread, or not ours to read
            continue
        for var in environ.split(b"\0"):
            if var.startswith(wanted) and token.encode() in var[len(wanted) :].split():
                stat = read_stat(int(entry.name))
                if (
                    before is not None
                    and stat is not None
                    and stat.start_ticks == before.start_ticks
                    and stat.state not in "ZXx"
                ):
                    found[int(entry.name)] = stat.start_ticks
                break
    return found


def kill_marked(token: str, timeout: float = 30.0) -> list[int]:
    """SIGKILL every process that carries ``token``, until none is left (a dying parent may
    still fork); the pids that were killed."""
    killed: dict[int, int] = {}

    def none_left() -> bool:
        for pid, ticks in marked(token).items():
            if _signal_verified(pid, ticks, signal.SIGKILL):
                killed[pid] = ticks
        # An exiting process loses its environment, so its mark, before it has exited:
        # done only once every one killed is gone too, or a caller may still find it running
        return not marked(token) and not any(_alive(p, t) for p, t in killed.items())

    wait_until(none_left, timeout, interval=0.1, what=f"processes of owner {token} to die")
    return list(killed)


def _alive(pid: int, ticks: int) -> bool:
    stat = read_stat(pid)
    return stat is not None and stat.start_ticks == ticks and _is_live_state(stat.state)


class Owner:
    """This process as an owner: mark the environment, register, start the watchdog."""

    def __init__(self, registry: Path | None = None) -> None:
        token = token_of(os.getpid())
        assert token is not None  # our own /proc entry
        self.token = token
        self.registry = registry or default_registry()
        self.entry = self.registry / token.replace(":", "-")
        self.watchdog: subprocess.Popen[bytes] | None = None

    def claim(self) -> None:
        # 1777 like /tmp: runs of other users register here too
        self.registry.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            self.registry.chmod(0o1777)
        self.entry.mkdir(mode=0o700, exist_ok=True)
        chain = os.environ.get(OWNERS_ENV, "").split()
        os.environ[OWNERS_ENV] = " ".join([*chain, self.token])
        # Not marked (it must outlive us to act), in a session of its own (a signal to our
        # process group must not take it along), output to a file (never our stdout).
        env = {k: v for k, v in os.environ.items() if k != OWNERS_ENV}
        argv = [sys.executable, "-m", "zkq.dev.owner", "watch", self.token, str(self.entry)]
        with open(self.entry / "watchdog.log", "ab") as log:
            self.watchdog = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )

    def leftovers(self) -> dict[int, int]:
        return marked(self.token)

    def release(self, keep: bool = False) -> None:
        """A clean end: the entry goes (or stays, with ``keep``, until the next sweep); the
        watchdog sees us exit and finds nothing to do."""
        if keep:
            (self.entry / KEEP).touch()
        else:
            shutil.rmtree(self.entry, ignore_errors=True)


def watch(token: str, entry: Path) -> None:
    """Wait for the owner to exit, then kill what it left and remove its entry."""
    pid = int(token.partition(":")[0])
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except ProcessLookupError:
        pidfd = None
    except OSError:  # no pidfds here (an old kernel, a seccomp filter): poll instead
        while owner_alive(token):
            time.sleep(1.0)
        pidfd = None
    # The pidfd was opened before this check, so it is the owner's (not a recycled pid's).
    if pidfd is not None and owner_alive(token):
        select.select([pidfd], [], [])  # readable once the owner has exited
        os.close(pidfd)
    clean_up(token, entry)


def clean_up(token: str, entry: Path) -> None:
    killed = kill_marked(token)
    if killed:
        print(f"owner {token} is gone: killed {sorted(killed)}", flush=True)
    if not (entry / KEEP).exists():
        shutil.rmtree(entry, ignore_errors=True)


def sweep_stale(registry: Path | None = None) -> list[str]:
    """Clean up after every registered owner that is dead; the tokens swept.  A kept entry
    (a failed run's files) goes too: it was kept until the next run, which this is."""
    swept: list[str] = []
    registry = registry or default_registry()
    if not registry.is_dir():
        return swept
    for entry in registry.iterdir():
        pid, _, ticks = entry.name.partition("-")
        if not (pid.isdigit() and ticks.isdigit()):
            continue
        token = f"{pid}:{ticks}"
        if owner_alive(token):
            continue
        try:
            (entry / KEEP).unlink(missing_ok=True)
            clean_up(token, entry)
        except (PermissionError, TimeoutError) as exc:
            # another user's run, or a process that will not die: not this run's to fail on
            print(f"could not sweep owner {token}: {exc}", file=sys.stderr, flush=True)
            continue
        swept.append(token)
    return swept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zkq.dev.owner")
    sub = parser.add_subparsers(dest="command", required=True)
    watch_cmd = sub.add_parser("watch", help="clean up after an owner once it exits")
    watch_cmd.add_argument("token")
    watch_cmd.add_argument("entry", type=Path)
    sub.add_parser("sweep", help="clean up after every dead registered owner")
    args = parser.parse_args(argv)
    if args.command == "watch":
        watch(args.token, args.entry)
    else:
        for token in sweep_stale():
            print(f"swept owner {token}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PID 1 of a testbed host (installed in the image as /sbin/testbed-init).

Runs inside the host's chroot and PID/UTS/IPC/mount namespaces, with the image's python3
(stdlib only; it never imports the harness). It does what an init system does for the few
things a test host needs:

* sets the hostname (the UTS namespace is the host's own) and /etc/hostname;
* creates the ssh host keys on first boot (the image ships none, so hosts differ);
* runs sshd in the foreground and respawns it if it dies: losing sshd makes the host
  unreachable, which no test wants by accident;
* "at boot" runs /etc/init.d/supervisor start when supervisor is installed, so a host that
  the harness restarts brings its supervised services back, as a real machine would;
* reaps every zombie: as PID 1 of a PID namespace it inherits every orphan;
* on SIGTERM (or SIGINT) sends TERM to every process of the namespace, KILL to the
  survivors a few seconds later, and exits, which ends the PID namespace.

Usage: testbed-init HOSTNAME
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

SSHD_LOG = "/var/log/testbed-sshd.log"
INIT_LOG = "/var/log/testbed-init.log"
SUPERVISOR_INIT = "/etc/init.d/supervisor"
GRACE_S = 5.0


class _Shutdown(Exception):
    pass


def _log(msg: str) -> None:
    with open(INIT_LOG, "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} testbed-init: {msg}\n")


def _on_signal(signum: int, _frame: object) -> None:
    # Raising interrupts the blocking waitpid() in the main loop (PEP 475 would otherwise
    # retry it). A PID 1 only receives the signals it has a handler for, so this is also
    # what makes SIGTERM from the root namespace work at all.
    raise _Shutdown(signal.Signals(signum).name)


def _spawn_sshd() -> int:
    with open(SSHD_LOG, "ab") as log:
        # -D: stay in the foreground, as our child, so we notice when it dies;
        # -e: log to stderr (there is no syslog daemon in a host).
        return subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e"], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        ).pid


def _boot(hostname: str) -> int:
    socket.sethostname(hostname)
    with open("/etc/hostname", "w") as f:
        f.write(hostname + "\n")
    # /run is a fresh tmpfs on every boot (mounted by the harness), as on a real machine:
    # stale pid files from before a "reboot" would name PIDs reused in the new namespace.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    os.makedirs("/run/lock", mode=0o1777, exist_ok=True)
    subprocess.run(["/usr/bin/ssh-keygen", "-A"], check=True, stdout=subprocess.DEVNULL)
    sshd = _spawn_sshd()
    if os.path.exists(SUPERVISOR_INIT):
        # Not waited for here: the main loop reaps it like any other child.
        with open(INIT_LOG, "ab") as log:
            subprocess.Popen(
                [SUPERVISOR_INIT, "start"], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
    return sshd


def _reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _shutdown(reason: str) -> None:
    # Nothing may interrupt the shutdown itself.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _log(f"shutdown ({reason})")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(-1, sig)  # from PID 1: every process of the namespace but ourselves
        except ProcessLookupError:
            return
        end = time.monotonic() + GRACE_S
        while time.monotonic() < end:
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return  # no children left: everyone has exited and been reaped
            time.sleep(0.05)


def main() -> None:
    hostname = sys.argv[1] if len(sys.argv) > 1 else socket.gethostname()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    os.environ.update(
        PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME="/root"
    )
    os.chdir("/")
    try:
        sshd = _boot(hostname)
        _log(f"booted as {hostname}, sshd pid {sshd}")
        respawns: list[float] = []
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(1)  # no children at all (sshd is always one, but be safe)
                continue
            if pid == sshd:
                _log(f"sshd exited (status {status:#x}); respawning")
                # Back off if it keeps dying (broken config): at most 5 starts a minute.
                now = time.monotonic()
                respawns = [t for t in respawns if now - t < 60] + [now]
                if len(respawns) > 5:
                    time.sleep(10)
                sshd = _spawn_sshd()
    except _Shutdown as exc:
        _shutdown(str(exc))
    except Exception as exc:
        _log(f"crashed: {exc!r}")
        _shutdown("crash")
        raise
    finally:
        _reap_all()


if __name__ == "__main__":
    main()

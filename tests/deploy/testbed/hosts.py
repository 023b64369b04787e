"""Test hosts: an overlay root, a network namespace and private PID/UTS/IPC/mount namespaces.

A host's root is an overlay mounted in the root namespace (so the harness can read and
write files in it, e.g. /etc/hosts before boot)::

    lowerdir = the base image (shared, read-only)
    upperdir = <state>/<name>/upper   (what the host changed: survives stop/start)
    workdir  = <state>/<name>/work
    mounted  = <state>/<name>/root

Booting runs, in the host's network namespace, ``unshare --pid --mount --uts --ipc --fork
--mount-proc=<root>/proc`` around a small shell that mounts /dev, /dev/shm, /sys and /run
into the root and execs ``chroot <root> /sbin/testbed-init <name>``, which becomes PID 1 of
the host. unshare makes the new mount namespace private, so those mounts exist only inside
the host and vanish with it. Killing PID 1 kills every process of the host (the kernel ends
the whole PID namespace), which is a power cut; SIGTERM is a clean shutdown. Either way the
upper layer stays, and booting again is a reboot.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import network
from .aptproxy import APT_CONF
from .common import GATEWAY, log, sh

SSH_USER = "root"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    state_dir: Path  # the testbed's state dir; this host's files are under <state_dir>/<name>

    @property
    def dir(self) -> Path:
        return self.state_dir / self.name

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def netns(self) -> str:
        return network.netns_name(self.name)


# ---------------------------------------------------------------------------- ssh identity


def ensure_ssh_key(state_dir: Path) -> Path:
    """The harness's ed25519 key (created once per state dir); returns the private key path."""
    key = state_dir / "id_ed25519"
    if not key.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zkq-testbed", "-f", key])
    return key


def ssh_argv(host: Host, key: Path, *, connect_timeout: int = 5) -> list[str]:
    """ssh options for a throwaway machine: no known_hosts (keys change on every fresh
    root), no user config (-F /dev/null: a developer's ~/.ssh/config must not interfere),
    never a password prompt."""
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(key),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        f"ConnectTimeout={connect_timeout}",
        f"{SSH_USER}@{host.address}",
    ]


def run(
    host: Host,
    key: Path,
    command: str,
    *,
    timeout: float | None = 600,
    check: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a shell command line on the host over ssh (as a real machine would be reached)."""
    proc = subprocess.run(
        [*ssh_argv(host, key), command],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{host.name}: {command!r} exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc


def wait_ssh(host: Host, key: Path, deadline_s: float = 60.0) -> float:
    """Wait until port 22 answers and `ssh true` succeeds; return the seconds waited."""
    start = time.monotonic()
    end = start + deadline_s
    last = ""
    while time.monotonic() < end:
        try:
            with socket.create_connection((host.address, 22), timeout=1):
                pass
        except OSError as exc:
            last = f"port 22: {exc}"
            time.sleep(0.1)
            continue
        proc = run(host, key, "true", timeout=10)
        if proc.returncode == 0:
            return time.monotonic() - start
        last = f"ssh true: exit {proc.returncode}: {proc.stderr.strip()}"
        time.sleep(0.2)
    raise TimeoutError(f"{host.name} ({host.address}): no ssh after {deadline_s}s ({last})")


# ---------------------------------------------------------------------------- filesystem


def is_mounted(path: Path) -> bool:
    return any(mountpoint == str(path) for mountpoint in mountpoints())


def mountpoints() -> list[str]:
    """Mount points of the root namespace, in mount order (octal escapes decoded)."""
    points = []
    with open("/proc/self/mounts") as f:
        for line in f:
            raw = line.split()[1]
            points.append(raw.encode().decode("unicode_escape"))
    return points


def prepare_root(host: Host, image: Path, pubkey: str, hosts_file: str) -> None:
    """Mount the host's overlay (if not mounted) and write what the harness owns in it."""
    for sub in ("upper", "work", "root"):
        (host.dir / sub).mkdir(parents=True, exist_ok=True)
    if not is_mounted(host.root):
        opts = f"lowerdir={image},upperdir={host.dir / 'upper'},workdir={host.dir / 'work'}"
        sh(["mount", "-t", "overlay", "overlay", "-o", opts, host.root])
    root = host.root
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(pubkey)
    auth.chmod(0o600)
    write_hosts_file(host, hosts_file)
    (root / "etc/apt/apt.conf.d/01testbed-proxy").write_text(APT_CONF)
    for mountpoint in ("proc", "sys", "dev", "run"):
        (root / mountpoint).mkdir(exist_ok=True)


def write_hosts_file(host: Host, text: str) -> None:
    # Written in place (not replaced by rename): a running host sees the change at once.
    (host.root / "etc/hosts").write_text(text)


def hosts_file(hosts: list[Host]) -> str:
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{GATEWAY}\ttestbed-gw",
    ]
    # Every host resolves every other by name, and its own name to its own address (not
    # 127.0.1.1, Debian's default): ZooKeeper and friends bind to what their name resolves to.
    lines += [f"{h.address}\t{h.name}" for h in sorted(hosts, key=lambda h: h.name)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- lifecycle

# Runs inside the new namespaces, before the chroot: $1 = root, $2 = host name.
_BOOT_SH = """\
set -e
mount --rbind /dev "$1/dev"
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$1/dev/shm"
mount -t sysfs -o nosuid,nodev,noexec sysfs "$1/sys"
mount -t tmpfs -o mode=755,nosuid,nodev run "$1/run"
exec chroot "$1" /sbin/testbed-init "$2"
"""
# /dev is the box's (bind), but /dev/shm is a fresh tmpfs: POSIX shared memory and
# semaphores must not be shared between hosts. /sys is mounted from inside the host's
# network namespace, so /sys/class/net shows the host's own interfaces. /run is a tmpfs so a
# reboot starts without stale pid files, as on a real machine.

_INIT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
}


def boot(host: Host) -> tuple[int, int]:
    """Start the host; return (launcher PID, host PID 1 as seen from the root namespace)."""
    argv = [
        "ip",
        "netns",
        "exec",
        host.netns,
        "unshare",
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--fork",
        # If the launcher dies (killed by hand or by a cleanup), the host dies with it.
        "--kill-child=SIGKILL",
        f"--mount-proc={host.root / 'proc'}",
        "sh",
        "-c",
        _BOOT_SH,
        "testbed-boot",
        str(host.root),
        host.name,
    ]
    log.debug("$ %s", shlex.join(argv))
    with open(host.dir / "console.log", "ab") as console:
        # Own session: a CLI `up` may exit, and a test's Ctrl-C must not reach the hosts.
        launcher = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=console,
            env=_INIT_ENV,
            start_new_session=True,
        )
    end = time.monotonic() + 10
    while time.monotonic() < end:
        children = _children(launcher.pid)
        if children:
            return launcher.pid, children[0]
        if launcher.poll() is not None:
            break
        time.sleep(0.01)
    launcher.kill()
    raise RuntimeError(f"{host.name}: boot failed; see {host.dir / 'console.log'}")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def find_init(host: Host) -> int | None:
    """The host's PID 1 (as a root-namespace PID), found by the namespace, not by memory."""
    if host.netns not in network.list_namespaces():
        return None
    for pid in network.namespace_pids(host.netns):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            # "NSpid: <root pid> 1" = PID 1 of a child PID namespace.
            fields = line.split()
            if fields[0] == "NSpid:" and len(fields) > 2 and fields[-1] == "1":
                return pid
    return None


def halt(host: Host, *, hard: bool = False, grace_s: float = 15.0) -> None:
    """Stop the host: SIGTERM to its PID 1 (clean shutdown) or SIGKILL (power cut).

    Either way the kernel kills whatever is left in the PID namespace once PID 1 is gone.
    Then anything still in the network namespace (the launcher, a stray `ip netns exec`)
    is killed too, so a following boot starts from nothing.
    """
    init = find_init(host)
    if init is not None:
        _signal(init, signal.SIGKILL if hard else signal.SIGTERM)
        _wait_gone([init], grace_s)
        if alive(init):
            log.warning("%s: PID 1 ignored SIGTERM for %ss; killing", host.name, grace_s)
            _signal(init, signal.SIGKILL)
            _wait_gone([init], 5)
    if host.netns in network.list_namespaces():
        kill_all(network.namespace_pids(host.netns))


def kill_all(pids: list[int], grace_s: float = 3.0) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    _wait_gone(pids, grace_s)
    for pid in pids:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    _wait_gone(pids, 5)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for pid in pids:
            # Our own children (launchers started by this process) must be reaped here, or
            # they stay zombies; anyone else's are reaped by their parent or by init.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if not any(alive(p) for p in pids):
            return
        time.sleep(0.05)


def processes_rooted_under(path: Path) -> list[int]:
    """PIDs whose root directory is under `path`: a host's processes, found even when the
    network namespace that would list them is already gone (a crashed half-done `down`)."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        if root.startswith(prefix) and alive(int(entry)):
            found.append(int(entry))
    return found


def unmount_under(path: Path) -> list[str]:
    """Unmount everything at or below `path`, deepest first; lazily if busy. Returns them."""
    prefix = str(path).rstrip("/")
    points = [p for p in mountpoints() if p == prefix or p.startswith(prefix + "/")]
    for point in reversed(points):
        if sh(["umount", point], check=False).returncode != 0:
            log.warning("umount %s failed; detaching it lazily", point)
            sh(["umount", "-l", point], check=False)
    return points

"""A testbed of "separate machines on one box" for testing the Ansible deployment of zkq.

Each host has its own address on a bridge (10.77.0.0/24), its own root filesystem (an
overlay over a shared Debian bookworm image), its own PID/UTS/IPC/mount namespaces, and is
reached over ssh as root, like a real machine. The hosts reach Debian's mirror through an
apt-cacher-ng on 10.77.0.1:3142 (the box has no NAT).

    with Testbed({"zk1": None, "zk2": None}) as tb:
        tb.run("zk1", "hostname")          # CompletedProcess
        tb.write_inventory(path, groups={"zookeeper": ["zk1", "zk2"]})

Needs root. See README-style notes in each module: image.py (base image), network.py,
hosts.py (namespaces and PID 1), aptproxy.py, inventory.py. CLI: python -m
tests.deploy.testbed {up,down,status,ssh}.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from . import aptproxy, hosts, image, inventory, network
from .common import CACHE_ROOT, DEFAULT_STATE_DIR, log
from .hosts import Host
from .state import HostState, State

__all__ = ["DEFAULT_STATE_DIR", "Host", "Testbed"]

FIRST_AUTO_OCTET = 11  # .1 is the bridge; leave a few low addresses for hand-made hosts
# Bridge, namespace and link names are machine-wide, so only one testbed can be up at a time:
# a second `up` (say, a parallel pytest worker) would tear the first one down as "leftovers".
# The running testbed's process holds this lock until its down(); a CLI `up` exits and so
# releases it (manual use), but its hosts stay up until a `down`.
RUN_LOCK = CACHE_ROOT / "testbed.lock"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")  # a valid hostname, and a sane netns name


class Testbed:
    __test__ = False  # a harness, not a test class, whatever pytest makes of its name

    def __init__(
        self,
        hosts: Mapping[str, int | None] | Iterable[str] = (),
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        passthrough: str | None = None,
        ssh_deadline_s: float = 90.0,
    ) -> None:
        """`hosts` maps host name to the last octet of its address (None: the next free one
        from .11). `passthrough`: see aptproxy.start (https sites the hosts may reach)."""
        self.state_dir = Path(state_dir)
        self.passthrough = passthrough
        self.ssh_deadline_s = ssh_deadline_s
        self._octets: dict[str, int] = {}
        self._lock = threading.Lock()
        self._run_lock: int | None = None
        self._state = State()
        self.image: Path = image.IMAGE_DIR
        items = hosts.items() if isinstance(hosts, Mapping) else ((h, None) for h in hosts)
        for name, octet in items:
            self._assign(name, octet)

    @classmethod
    def attach(cls, state_dir: Path | str = DEFAULT_STATE_DIR) -> Testbed:
        """The testbed another process brought up, as recorded in its state.json."""
        tb = cls(state_dir=state_dir)
        tb._state = State.load(tb.state_dir)
        tb._octets = {name: h.octet for name, h in tb._state.hosts.items()}
        return tb

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Testbed:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> None:
        """Bring the whole testbed up from whatever state the machine is in."""
        started = time.monotonic()
        self._take_run_lock()
        self._clean()  # leftovers of a crashed run, found by name and path
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            hosts.ensure_ssh_key(self.state_dir)
            network.ensure_bridge()
            self._state.apt_proxy_pid = aptproxy.start(self.state_dir, self.passthrough)
            self._save()
            # After the proxy: debootstrap then fills the same cache as the hosts.
            self.image = image.ensure_image(http_proxy=aptproxy.PROXY_URL)
            names = list(self._octets)
            for name in names:
                network.add_host(name, self.address(name))
            self._parallel(self._boot, names)
            self._prime_apt_proxy(names)
        except BaseException:
            log.error("testbed up failed; tearing down (logs stay in %s)", self.state_dir)
            self.down(keep_files=True)
            raise
        log.info("testbed up: %d hosts in %.1fs", len(self._octets), time.monotonic() - started)

    def down(self, *, keep_files: bool = False) -> None:
        """Remove everything a testbed made, this one's or a crashed one's; idempotent.

        By PID (state.json), by name (every ``zkqtb*`` namespace and link) and by path
        (mounts and process roots under the state dir). With `keep_files`, the hosts'
        upper layers and logs stay for a post-mortem (the next `up` removes them).
        """
        self._clean(keep_files=keep_files)
        if self._run_lock is not None:
            os.close(self._run_lock)  # closing the descriptor releases the flock
            self._run_lock = None

    def _clean(self, *, keep_files: bool = False) -> None:
        state = State.load(self.state_dir)
        # 1. The hosts: SIGKILL to each PID 1 ends its whole PID namespace at once.
        for ns in network.testbed_namespaces():
            host = Host(ns.removeprefix("zkqtb-"), "", self.state_dir)
            init = hosts.find_init(host)
            if init is not None:
                hosts.kill_all([init])
            hosts.kill_all(network.namespace_pids(ns))  # launchers, stray `ip netns exec`
        stray = hosts.processes_rooted_under(self.state_dir)
        if stray:
            log.warning("killing %d host processes outside any testbed netns", len(stray))
            hosts.kill_all(stray)
        launchers = [h.launcher_pid for h in state.hosts.values() if h.launcher_pid]
        hosts.kill_all([p for p in launchers if _cmdline_mentions(p, str(self.state_dir))])
        # 2. The apt proxy (by PID and pid file; never by name: a system one may run).
        aptproxy.stop(state.apt_proxy_pid, self.state_dir)
        # 3. Overlays and anything else mounted under the state dir.
        hosts.unmount_under(self.state_dir)
        # 4. Namespaces, veths, the bridge.
        network.teardown()
        # 5. Files.
        if not keep_files and self.state_dir.exists():
            if any(p.startswith(str(self.state_dir) + "/") for p in hosts.mountpoints()):
                log.error("mounts remain under %s; not deleting host files", self.state_dir)
            else:
                for child in self.state_dir.iterdir():
                    if (child / "upper").is_dir():
                        shutil.rmtree(child)
        (self.state_dir / "state.json").unlink(missing_ok=True)
        self._state = State()
        for name in self._octets:  # keep the host list: up() after down() works again
            self._state.hosts[name] = HostState(self._octets[name])

    def _prime_apt_proxy(self, names: list[str]) -> None:
        """Fetch the package lists on every host, one host at a time, before any playbook
        runs (as a cloud image comes with its lists).

        apt-cacher-ng fumbles the same index file (InRelease) refreshed for several
        clients in the same second ("Failure to move file ... out of the way") and leaves
        some of them hanging; one at a time, the first host fetches each file and the
        others get it from the cache (FreshIndexMaxAge)."""
        started = time.monotonic()
        for name in names:
            done = self.run(name, "apt-get update -qq", timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"apt-get update on {name} failed: {done.stderr.strip()}")
        log.info("apt lists fetched on %d hosts in %.1fs", len(names), time.monotonic() - started)

    # ------------------------------------------------------------------ hosts

    def add_host(self, name: str, octet: int | None = None) -> Host:
        """Start one more host in a running testbed; every host learns its name."""
        self._assign(name, octet)
        network.add_host(name, self.address(name))
        self._boot(name)
        self._refresh_hosts_files()
        self._prime_apt_proxy([name])
        return self.host(name)

    def stop_host(self, name: str, *, hard: bool = False) -> None:
        """Shut the host down (hard: power cut, SIGKILL to PID 1). Its disk stays."""
        hosts.halt(self.host(name), hard=hard)
        with self._lock:
            self._state.hosts[name] = HostState(self._octets[name])
            self._save()

    def start_host(self, name: str) -> None:
        """Boot a stopped host again with its filesystem as it was (a reboot)."""
        if hosts.find_init(self.host(name)) is not None:
            raise RuntimeError(f"{name} is running; stop_host() it first")
        self._boot(name)

    def reboot_host(self, name: str, *, hard: bool = False) -> None:
        self.stop_host(name, hard=hard)
        self.start_host(name)

    def is_running(self, name: str) -> bool:
        return hosts.find_init(self.host(name)) is not None

    def cut_link(self, name: str) -> None:
        network.cut_link(self._known(name))

    def restore_link(self, name: str) -> None:
        network.restore_link(self._known(name))

    # ------------------------------------------------------------------ access

    @property
    def names(self) -> list[str]:
        return list(self._octets)

    def host(self, name: str) -> Host:
        return Host(self._known(name), self.address(name), self.state_dir)

    def address(self, name: str) -> str:
        return f"10.77.0.{self._octets[self._known(name)]}"

    def root(self, name: str) -> Path:
        """The host's filesystem as seen from the harness (the mounted overlay)."""
        return self.host(name).root

    @property
    def ssh_key(self) -> Path:
        return hosts.ensure_ssh_key(self.state_dir)

    def ssh_argv(self, name: str) -> list[str]:
        """`ssh ... root@addr`: append a command, e.g. for subprocess.Popen."""
        return hosts.ssh_argv(self.host(name), self.ssh_key)

    def run(
        self, name: str, command: str, *, timeout: float | None = 600, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return hosts.run(self.host(name), self.ssh_key, command, timeout=timeout, check=check)

    def inventory(
        self,
        groups: Mapping[str, Iterable[str]] | None = None,
        hostvars: Mapping[str, Mapping[str, Any]] | None = None,
        groupvars: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        addresses = {name: self.address(name) for name in self._octets}
        return inventory.build(addresses, self.ssh_key, groups, hostvars, groupvars)

    def write_inventory(
        self,
        path: Path | str,
        groups: Mapping[str, Iterable[str]] | None = None,
        hostvars: Mapping[str, Mapping[str, Any]] | None = None,
        groupvars: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Path:
        """Write an Ansible inventory (YAML, as JSON) for every host; returns the path."""
        return inventory.write(Path(path), self.inventory(groups, hostvars, groupvars))

    # ------------------------------------------------------------------ internals

    def _assign(self, name: str, octet: int | None) -> None:
        if not _NAME.match(name):
            raise ValueError(f"bad host name {name!r} (want {_NAME.pattern})")
        if name in self._octets:
            raise ValueError(f"host {name!r} already exists")
        used = set(self._octets.values())
        if octet is None:
            octet = next(o for o in range(FIRST_AUTO_OCTET, 255) if o not in used)
        if not 2 <= octet <= 254 or octet in used:
            raise ValueError(f"{name}: octet {octet} is out of range or taken")
        self._octets[name] = octet
        self._state.hosts[name] = HostState(octet)

    def _known(self, name: str) -> str:
        if name not in self._octets:
            raise KeyError(f"no testbed host {name!r} (have {sorted(self._octets)})")
        return name

    def _hosts_file(self) -> str:
        return hosts.hosts_file([self.host(n) for n in self._octets])

    def _refresh_hosts_files(self) -> None:
        text = self._hosts_file()
        for name in self._octets:
            host = self.host(name)
            if hosts.is_mounted(host.root):
                hosts.write_hosts_file(host, text)

    def _boot(self, name: str) -> None:
        host = self.host(name)
        started = time.monotonic()
        pubkey = self.ssh_key.with_suffix(".pub").read_text()
        hosts.prepare_root(host, self.image, pubkey, self._hosts_file())
        launcher, init = hosts.boot(host)
        with self._lock:
            self._state.hosts[name] = HostState(self._octets[name], launcher, init)
            self._save()
        hosts.wait_ssh(host, self.ssh_key, self.ssh_deadline_s)
        log.info("%s (%s) up in %.1fs", name, host.address, time.monotonic() - started)

    def _take_run_lock(self) -> None:
        if self._run_lock is not None:
            return
        RUN_LOCK.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            raise RuntimeError(
                f"another testbed is up (process {holder or '?'} holds {RUN_LOCK})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._run_lock = fd

    def _parallel(self, fn: Callable[[str], None], names: list[str]) -> None:
        if not names:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            for future in [pool.submit(fn, n) for n in names]:
                future.result()  # re-raises the first failure

    def _save(self) -> None:
        self._state.save(self.state_dir)


def _cmdline_mentions(pid: int, text: str) -> bool:
    """Guards kills by recorded PID: after a reboot of the box the PID may be anyone's."""
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False

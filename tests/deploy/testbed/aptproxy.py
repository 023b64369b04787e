"""apt-cacher-ng on 10.77.0.1:3142, the hosts' only way to Debian's mirror (there is no NAT).

It runs in the foreground as a child of whoever called ``start`` (in its own session so that
a CLI ``up`` may exit and leave it running), from a configuration directory of our own in the
state dir, not /etc/apt-cacher-ng: the packaged backends_debian names ftp.debian.org as the
upstream for every Debian mirror, and a machine may resolve deb.debian.org only (this one
does). Every path it writes is ours too, so it never touches the system instance's cache,
log, pid file or socket; the two can coexist as long as the system one does not hold port
3142 on 10.77.0.1 (a wildcard listener would: ``start`` checks for that and says so).

The cache directory is under /var/cache/zkq-testbed and survives ``down``: a second run on
the same machine downloads nothing it already has.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .common import APT_PROXY_PORT, CACHE_ROOT, GATEWAY, log

ACNG = "/usr/sbin/apt-cacher-ng"
CACHE_DIR = CACHE_ROOT / "apt"
PROXY_URL = f"http://{GATEWAY}:{APT_PROXY_PORT}"

# What each host gets in /etc/apt/apt.conf.d/01testbed-proxy.
# A request the proxy fumbles is retried after a bounded wait instead of hanging apt (and
# the Ansible task that runs it) for good.
APT_CONF = "".join(
    [
        f'Acquire::http::Proxy "{PROXY_URL}";\n',
        'Acquire::http::Timeout "20";\n',
        'Acquire::Retries "3";\n',
        # apt asks proxies for fresh index files (Cache-Control: max-age=0) by default,
        # which makes apt-cacher-ng refresh InRelease for every host at once; an hour-old
        # one is fine for the length of a test run
        'Acquire::http::Max-Age "3600";\n',
    ]
)


def _answering(timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((GATEWAY, APT_PROXY_PORT), timeout=timeout):
            return True
    except OSError:
        return False


def start(state_dir: Path, passthrough: str | None = None, deadline_s: float = 15.0) -> int:
    """Start apt-cacher-ng and wait until it accepts connections; return its PID.

    `passthrough` is apt-cacher-ng's PassThroughPattern: the host:port targets it will
    tunnel (HTTP CONNECT) without caching, e.g. ``"^(pypi\\.org|files\\.pythonhosted\\.org):443$"``
    if a playbook needs pip over https. The default keeps the package's setting, which
    tunnels nearly nothing: the hosts reach Debian's mirrors and no other site.
    """
    if _answering():
        raise RuntimeError(
            f"something already listens on {GATEWAY}:{APT_PROXY_PORT} (a system apt-cacher-ng "
            "bound to all addresses? stop it, or run `down` to clear a previous testbed)"
        )
    run_dir = state_dir / "acng"
    log_dir = run_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    conf_dir = run_dir / "conf"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "acng.conf").write_text(_config(run_dir, log_dir, passthrough))
    argv = [ACNG, "-c", str(conf_dir), "ForeGround=1"]
    with open(run_dir / "stderr.log", "ab") as err:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True
        )
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(
                f"apt-cacher-ng exited {proc.returncode}; see {run_dir / 'stderr.log'}"
            )
        if _answering():
            log.info("apt proxy up at %s (pid %d, cache %s)", PROXY_URL, proc.pid, CACHE_DIR)
            return proc.pid
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"apt-cacher-ng did not answer on {PROXY_URL} in {deadline_s}s")


def _config(run_dir: Path, log_dir: Path, passthrough: str | None) -> str:
    lines = [
        f"CacheDir: {CACHE_DIR}",
        f"LogDir: {log_dir}",
        f"PidFile: {run_dir / 'pid'}",
        # The admin socket defaults to /run/apt-cacher-ng/socket, the system instance's.
        f"SocketPath: {run_dir / 'socket'}",
        # The mirror lists (deb_mirrors.gz...) that the Remap rules below refer to.
        "SupportDir: /usr/lib/apt-cacher-ng",
        f"Port: {APT_PROXY_PORT}",
        f"BindAddress: {GATEWAY}",
        # Requests for any known Debian mirror are cached under one name ("debrep") and
        # fetched from deb.debian.org, so hosts and debootstrap share cache entries.
        "Remap-debrep: file:deb_mirror*.gz /debian ; http://deb.debian.org/debian/",
        "Remap-secdeb: security.debian.org security.debian.org/debian-security "
        "deb.debian.org/debian-security /debian-security ; "
        "http://deb.debian.org/debian-security/",
        # The box may have IPv6 routes that do not reach the internet; try IPv4 first.
        "ConnectProto: v4 v6",
        "ExThreshold: 4",
        # Index files (InRelease and the like) fetched in the last hour are served from the
        # cache without asking the mirror again.  Nine hosts running `apt-get update` at
        # once otherwise make it refresh the same InRelease concurrently, which it fumbles
        # ("Failure to move file ... out of the way") and leaves some clients hanging.
        "FreshIndexMaxAge: 3600",
        "UnbufferLogs: 1",
        "VerboseLog: 1",
    ]
    if passthrough:
        lines.append(f"PassThroughPattern: {passthrough}")
    return "\n".join(lines) + "\n"


def stop(pid: int | None, state_dir: Path) -> None:
    """Stop our apt-cacher-ng: by PID when known, else by its pid file in the state dir.

    Never by name: a system instance (or another user's) must survive.
    """
    pids = set()
    if pid:
        pids.add(pid)
    pid_file = state_dir / "acng" / "pid"
    with contextlib.suppress(OSError, ValueError):
        pids.add(int(pid_file.read_text().strip()))
    # And any apt-cacher-ng started with our configuration directory (a lost pid file).
    conf = str(state_dir / "acng" / "conf").encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _is_acng(int(entry)):
            try:
                if conf in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0"):
                    pids.add(int(entry))
            except OSError:
                continue
    for p in pids:
        # only one started with our configuration: a recycled pid may be anyone's
        if not _is_acng(p) or not _runs_with(p, conf):
            continue
        # it may exit between the check and the signal: that is what we want anyway
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
        end = time.monotonic() + 5
        while time.monotonic() < end and _is_acng(p):
            _reap(p)
            time.sleep(0.05)
        if _is_acng(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        _reap(p)


def _runs_with(pid: int, argument: bytes) -> bool:
    try:
        return argument in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def _reap(pid: int) -> None:
    # ChildProcessError: not our child (another process started it); its parent reaps it.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _is_acng(pid: int) -> bool:
    """True while `pid` is a live apt-cacher-ng (a zombie or a recycled PID is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z" and exe.startswith(ACNG)

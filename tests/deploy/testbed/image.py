"""The hosts' shared, read-only base root: a minimal Debian bookworm made by debootstrap.

Built once per machine into /var/cache/zkq-testbed/base-bookworm and reused by every run as
the lower layer of each host's overlay. A build goes to a temporary sibling directory that
is renamed into place only when complete, with a stamp naming the format version and a hash
of what we put into the image ourselves: an interrupted build is never mistaken for a good
image, and changing the customisation below rebuilds it. An fcntl lock serialises
concurrent runs (the second waits and then reuses the first one's image).

It holds only what Ansible needs to manage the host over ssh (sshd, python3, python3-apt
for the apt module, sudo-less root login); the playbook installs everything else.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from .common import CACHE_ROOT, log, sh

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
IMAGE_DIR = CACHE_ROOT / f"base-{SUITE}"
STAMP = ".zkq-testbed-image"  # in the image root, so the rename publishes it atomically

# Bump when the build recipe changes in a way the hash below does not see.
FORMAT_VERSION = 1

PACKAGES = [
    "openssh-server",
    "python3",
    "python3-apt",  # ansible's apt module needs it (it would otherwise install it itself)
    "iproute2",
    "procps",
    "ca-certificates",
    "apt-utils",
    "iputils-ping",  # tests and humans check reachability between hosts
]

SOURCES_LIST = f"""\
deb http://deb.debian.org/debian {SUITE} main
deb http://deb.debian.org/debian {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
"""

# Package installs must not start daemons (there is no init system to own them; the
# deployment starts its services under supervisor). Debian's container images do the same.
POLICY_RC_D = "#!/bin/sh\n# zkq testbed: never start services from maintainer scripts.\nexit 101\n"

SSHD_CONFIG = """\
# zkq testbed: root logs in with the harness's key only; no DNS lookups of clients
# (there is no resolver on the testbed network, each lookup would wait for a timeout).
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""

INIT_SOURCE = Path(__file__).with_name("testbed_init.py")


def _stamp_text() -> str:
    digest = hashlib.sha256()
    for part in (
        " ".join(PACKAGES),
        SOURCES_LIST,
        POLICY_RC_D,
        SSHD_CONFIG,
        INIT_SOURCE.read_text(),
    ):
        digest.update(part.encode())
    return f"format={FORMAT_VERSION} recipe={digest.hexdigest()[:16]}\n"


def is_current(image: Path = IMAGE_DIR) -> bool:
    try:
        return (image / STAMP).read_text() == _stamp_text()
    except OSError:
        return False


def ensure_image(http_proxy: str | None = None, image: Path = IMAGE_DIR) -> Path:
    """Return the base image, building it first if missing or stale.

    With `http_proxy` (the testbed's apt-cacher-ng) debootstrap downloads through the same
    cache as the hosts, so a rebuild on the same machine fetches nothing again.
    """
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image.parent / f"{image.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build finishes first; then reuse it
        if is_current(image):
            log.info("base image %s is current", image)
            return image
        _build(image, http_proxy)
    return image


def _build(image: Path, http_proxy: str | None) -> None:
    tmp = image.with_name(f"{image.name}.tmp")
    # A leftover of an interrupted build (we hold the lock, so nobody is writing it).
    if tmp.exists():
        shutil.rmtree(tmp)
    log.info("building base image %s (debootstrap %s, a few minutes)", image, SUITE)
    started = time.monotonic()
    env = dict(os.environ)
    if http_proxy:
        env["http_proxy"] = http_proxy
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(tmp),
        MIRROR,
    ]
    log_path = image.with_name(f"{image.name}.build.log")
    with open(log_path, "w") as out:
        rc = subprocess.run(argv, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        raise RuntimeError(f"debootstrap failed ({rc}); see {log_path}")
    _customise(tmp)
    (tmp / STAMP).write_text(_stamp_text())
    if image.exists():
        # Replaced only when nothing uses it: overlays of running hosts would break.
        old = image.with_name(f"{image.name}.old")
        if old.exists():
            shutil.rmtree(old)
        image.rename(old)
        shutil.rmtree(old)
    tmp.rename(image)
    log.info("base image built in %.0fs", time.monotonic() - started)


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _customise(root: Path) -> None:
    _write(root, "/etc/apt/sources.list", SOURCES_LIST)
    _write(root, "/usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)
    _write(root, "/etc/ssh/sshd_config.d/zkq-testbed.conf", SSHD_CONFIG)
    _write(root, "/sbin/testbed-init", INIT_SOURCE.read_text(), 0o755)
    # Each host makes its own keys at first boot (ssh-keygen -A in testbed-init): shared
    # keys would make the hosts indistinguishable to ssh.
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # Keep the image small and apt's view honest: lists come from each host's own update.
    sh(["chroot", str(root), "apt-get", "clean"])
    for lists in (root / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)

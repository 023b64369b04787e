"""Names, paths and small helpers shared by the testbed modules.

Everything the testbed creates in the root namespace carries the prefix ``zkqtb`` so that a
later run (or ``down`` from another process) can find and remove leftovers of a crashed run
by name alone, without any state file.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("zkq.testbed")

PREFIX = "zkqtb"
BRIDGE = f"{PREFIX}0"
SUBNET_PREFIX = "10.77.0"
GATEWAY = f"{SUBNET_PREFIX}.1"
NETMASK_BITS = 24

# The image and the apt cache live outside the repository and outside the per-run state so
# that they survive `down` and are shared by every checkout on the machine.
CACHE_ROOT = Path("/var/cache/zkq-testbed")
DEFAULT_STATE_DIR = Path("/var/tmp/zkq-testbed")

APT_PROXY_PORT = 3142


def sh(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    capture: bool = True,
    timeout: float | None = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command in the root namespace, logging it; raise with its stderr on failure."""
    args = [str(a) for a in argv]
    log.debug("$ %s", shlex.join(args))
    proc = subprocess.run(
        args, capture_output=capture, text=True, timeout=timeout, input=input, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(args)} exited {proc.returncode}: {(proc.stderr or '').strip()}"
        )
    return proc


def host_address(octet: int) -> str:
    return f"{SUBNET_PREFIX}.{octet}"

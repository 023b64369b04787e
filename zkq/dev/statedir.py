"""The state directory of a dev cluster (``.zkq-dev`` by default): what is in it, the
state file, and the lock around the commands that change the cluster::

    state.json        what runs: pids and start times, argv, logs, ports, settings
    lock              flock'd while a command changes the cluster
    zookeeper/zk<N>/  one directory per ZooKeeper node
    mariadb/          MariaDB's data directory (with ``up(mysql=True)``)
    logs/<name>.log   output of every member
    zk-auth/          ZooKeeper credentials, one 0600 file per role, and config files
    haproxy.cfg, frontends/<port>/   the HTTP side's config and metrics files

The state file is how one invocation knows what another started: ``zkq dev down`` in a new
shell reads the pids (with their start times) that ``zkq dev up`` wrote.  It is rewritten
whole after every change, through a temporary file and a rename, so a reader (or a crash)
never sees half of it.

It holds secrets (the MySQL passwords, root's included), so the file is created 0600 and the
directory made 0700: nothing in it, logs and HAProxy's key included, is any other local
user's to read.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zkq.dev.errors import BadState, DevClusterError

#: bumped when the file's shape changes; a file of another version is refused, not guessed at
STATE_VERSION = 1
STATE_FILE = "state.json"
ZOOKEEPER_DIR, MARIADB_DIR, LOGS_DIR = "zookeeper", "mariadb", "logs"
AUTH_DIR = "zk-auth"  # the ZooKeeper credentials (zkq.dev.credentials), made afresh per up


def read_state(path: Path) -> dict[str, Any] | None:
    """The recorded state, or ``None`` when there is no file (no cluster from here)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BadState(f"cannot read {path}: {exc}; remove it by hand") from exc
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        version = data.get("version") if isinstance(data, dict) else None
        raise BadState(
            f"{path} has version {version!r}, expected {STATE_VERSION}: remove it by hand"
        )
    return data


def make_private(state_dir: Path) -> None:
    """Create ``state_dir`` if need be, and make it 0700 (also one an older zkq made 0755)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)


def write_state(path: Path, data: dict[str, Any]) -> None:
    make_private(path.parent)
    # Write then rename: a reader (or a crash) never sees half a file.  The temporary file
    # is created 0600 (os.open's mode), so the secrets are never readable to others, even
    # for a moment; a file left by a crash is truncated and rewritten.
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # a leftover tmp of an older zkq kept its mode
        out.write(json.dumps({"version": STATE_VERSION, **data}, indent=2) + "\n")
    os.replace(tmp, path)


@contextlib.contextmanager
def changing(state_dir: Path) -> Iterator[None]:
    """Hold ``<state dir>/lock`` while a command changes the cluster: two ``up`` at once
    would both find no cluster running and both start one."""
    make_private(state_dir)
    with open(state_dir / "lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DevClusterError(
                f"another zkq dev command is changing {state_dir}: wait for it"
            ) from exc
        yield


def start_afresh(state_dir: Path) -> None:
    """Remove the previous run's ZooKeeper data, database and logs.  They stay until the
    next ``up``, for a post-mortem after ``down``."""
    for sub in (ZOOKEEPER_DIR, MARIADB_DIR, LOGS_DIR, AUTH_DIR):
        shutil.rmtree(state_dir / sub, ignore_errors=True)

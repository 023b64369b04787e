"""Which local dev cluster a ``zkq`` command uses when nothing else names a cluster.

**Running from this directory.**  A command looks at one state directory: ``$ZKQ_DEV_DIR``
when set, else ``.zkq-dev`` in the working directory (where ``zkq dev up`` and ``make run``
put it).  The cluster there counts as running while its state file lists a ZooKeeper node
whose process is still the one the launcher started (pid and start time, as ``zkq dev
down`` checks them), and the launcher has written its config files.  A cluster stopped
with ``zkq dev down`` (no state file) or whose processes died (a reboot) is never used:
connecting to what may now be somebody else's port would only confuse.  Parent
directories are not searched: which cluster a command talks to should not change with the
folder a user happened to ``cd`` into.

**What it gives.**  The config file the cluster writes for each role
(:func:`zkq.dev.credentials.config_file`: ZooKeeper hosts, root, the role's credential file,
every role's identity, the MySQL URL and HAProxy's stats page).  :mod:`zkq.options` uses
it as the command's config file when no flag, no environment variable and no config file
(``--config``, ``ZKQ_CONFIG``, ``/etc/zkq/zkq.toml``) names the cluster, so a flag or a
variable still wins setting by setting, and a dev cluster's MySQL is never paired with
another cluster's ZooKeeper.  ``zkq worker`` gets the worker's credential, ``zkq
frontend`` the frontend's, every other command the coordinator's, so an operator may act.

The launcher itself never relies on this: it passes every setting to its services.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zkq.coordinator.acl import Role
from zkq.dev import credentials, statedir
from zkq.dev.errors import BadState
from zkq.dev.zookeeper import ZooKeeperEnsemble

DEV_DIR_ENV = "ZKQ_DEV_DIR"
DEFAULT_DEV_DIR = ".zkq-dev"
#: the command that runs as another role than the coordinator's (an operator who acts)
COMMAND_ROLES = {"worker": Role.WORKER, "frontend": Role.FRONTEND}


@dataclass(frozen=True)
class DevDir:
    """A state directory found from here, and whether its cluster runs."""

    path: Path
    running: bool

    def config_file(self, role: Role | str = Role.COORDINATOR) -> Path:
        return credentials.config_file(self.path, Role(role))

    def describe(self) -> str:
        return f"the dev cluster in {self.path}" + ("" if self.running else " is not running")


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$ZKQ_DEV_DIR``, else ``./.zkq-dev``, absolute."""
    env = os.environ if environ is None else environ
    return Path(env.get(DEV_DIR_ENV) or DEFAULT_DEV_DIR).resolve()


def find(environ: Mapping[str, str] | None = None) -> DevDir | None:
    """The dev cluster's state directory seen from here; ``None`` when there is none."""
    path = state_dir(environ)
    if not path.is_dir():
        return None
    return DevDir(path, is_running(path))


def role_of_command(command: str | None) -> Role:
    return COMMAND_ROLES.get(command or "", Role.COORDINATOR)


def is_running(path: Path) -> bool:
    """A ZooKeeper node of the cluster in ``path`` runs, and its config files are written."""
    try:
        data = statedir.read_state(path / statedir.STATE_FILE)
    except BadState:
        return False  # a state file of another zkq: `zkq dev status` says what to do
    if data is None or not data.get("zookeeper"):
        return False
    ensemble = ZooKeeperEnsemble.from_dict(data["zookeeper"])
    alive = any(n.process is not None and n.process.alive() for n in ensemble.nodes)
    return alive and all(credentials.config_file(path, role).exists() for role in Role)

"""The ZooKeeper credentials of a dev cluster: one per role, made afresh at every ``up``.

::

    zk-auth/<role>          user:password of the role (mode 0600), for ZKQ_ZK_AUTH_FILE
    zk-auth/<role>.toml     a config file for ``zkq --config`` as that role (this cluster's
                            ZooKeeper, root, credential file and every role's identity,
                            MySQL URL and HAProxy stats page), also what commands run from
                            the cluster's folder use (:mod:`zkq.dev.discovery`)

Each service gets the file of its own role through ``ZKQ_ZK_AUTH_FILE`` in its environment,
never the secret on its command line, and every service the identities of all roles
(``ZKQ_ZK_ACL``, not secret), so that whichever creates a node gives it the policy's ACL
(:mod:`zkq.coordinator.acl`).  The launcher reads what it reads of ZooKeeper (who is
registered) as the read-only operator.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from zkq.coordinator.acl import AclIdentities, Role
from zkq.coordinator.config import ClusterConfig
from zkq.dev.services import ServiceSettings
from zkq.dev.statedir import AUTH_DIR


def auth_file(state_dir: Path, role: Role) -> Path:
    return state_dir / AUTH_DIR / str(role)


def config_file(state_dir: Path, role: Role) -> Path:
    return state_dir / AUTH_DIR / f"{role}.toml"


def _write_private(path: Path, text: str) -> None:
    # created 0600 from the start: never a moment when another user could read it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_TRUNC: fix it before writing
    with os.fdopen(fd, "w") as f:
        f.write(text)


def generate(state_dir: Path) -> dict[str, str]:
    """A new random credential per role, each written to its private file; the environment
    every member gets: all roles' identities.  They are no secret, and whichever process
    creates a node must know them all to give it the policy's ACL."""
    directory = state_dir / AUTH_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    credentials = {role: f"zkq-{role}:{secrets.token_urlsafe(24)}" for role in Role}
    for role, credential in credentials.items():
        _write_private(auth_file(state_dir, role), credential + "\n")
    return {"ZKQ_ZK_ACL": AclIdentities.of_credentials(credentials).format()}


class RoleCredentials:
    """What a :class:`~zkq.dev.cluster.DevCluster` offers about its credentials: how a
    process connects as each role."""

    state_dir: Path
    settings: ServiceSettings

    @property
    def connect_string(self) -> str:
        raise NotImplementedError

    @property
    def root(self) -> str:
        raise NotImplementedError

    @property
    def acl_identities(self) -> str | None:
        """Every role's digest identity (``ZKQ_ZK_ACL``); None without ACLs."""
        return self.settings.env.get("ZKQ_ZK_ACL") or None

    def zk_env(self, role: Role | str) -> dict[str, str]:
        """The environment that makes a zkq process connect as ``role``: its credential file
        (and no inline credential inherited from the caller's shell, which would leave two
        in one layer), and every role's identity (which members have from the cluster)."""
        if not self.acl_identities:
            return {}
        return {
            "ZKQ_ZK_AUTH_FILE": str(auth_file(self.state_dir, Role(role))),
            "ZKQ_ZK_AUTH": "",
            "ZKQ_ZK_ACL": self.acl_identities,
        }

    def member_env(self, role: str) -> dict[str, str]:
        """The credential of a member's role, if it is a zkq role (not HAProxy's)."""
        return self.zk_env(role) if role in Role.__members__.values() else {}

    def zk_options(self, role: Role | str) -> dict[str, str]:
        """:meth:`ClusterConfig.load` overrides that connect as ``role``."""
        if not self.acl_identities:
            return {}
        return {
            "zk_auth_file": str(auth_file(self.state_dir, Role(role))),
            "zk_acl": self.acl_identities,
        }

    def config(self, role: Role | str = Role.FRONTEND, **overrides: Any) -> ClusterConfig:
        """The settings of a process of ``role`` in this cluster (a client submits and reads
        as a frontend does; the coordinator's credential may do anything)."""
        settings = {"hosts": self.connect_string, "root": self.root, **self.zk_options(role)}
        return ClusterConfig.load(environ={}, **{**settings, **overrides})

    def write_role_configs(self, mysql_url: str | None, haproxy_stats: str | None) -> None:
        """A config file per role, for ``zkq --config`` and for the commands run from this
        folder (:mod:`zkq.dev.discovery`): rewritten as the cluster changes (the ensemble's
        ports, then MariaDB, then HAProxy), so it always names what runs."""
        (self.state_dir / AUTH_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)
        for role in Role:
            lines = ["[zookeeper]", f"hosts = {_toml(self.connect_string)}"]
            lines.append(f"root = {_toml(self.root)}")
            if self.acl_identities:
                lines.append(f"auth_file = {_toml(str(auth_file(self.state_dir, role)))}")
                lines.append(f"acl = {_toml(self.acl_identities)}")
            if mysql_url:
                lines += ["", "[mysql]", f"url = {_toml(mysql_url)}"]
            if haproxy_stats:
                lines += ["", "[haproxy]", f"stats = {_toml(haproxy_stats)}"]
            _write_private(config_file(self.state_dir, role), "\n".join(lines) + "\n")


def _toml(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's for everything a URL or path holds."""
    return json.dumps(value)

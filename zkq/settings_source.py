"""Which cluster a ``zkq`` command uses, where that came from, and what to say when it
cannot be reached.

The layers are :mod:`zkq.options`' (flags, then the environment, then the config file:
``--config``, ``ZKQ_CONFIG``, else ``/etc/zkq/zkq.toml`` if present), and under them the
local dev cluster: when nothing *names a cluster* (no ``--zk``, no ``ZKQ_ZK_HOSTS``, no
config file) and a dev cluster runs from here (:mod:`zkq.dev.discovery`: ``./.zkq-dev``
or ``$ZKQ_DEV_DIR``), the config file that cluster writes for the command's role becomes
the command's config file.  So every ``zkq`` command works from the folder of ``make run``
with nothing set, a flag or variable still wins setting by setting (``ZKQ_ROOT``,
``ZKQ_MYSQL_URL``, ...), and the dev cluster's MySQL or credentials never join the
ZooKeeper of a cluster named some other way.  The defaults (``127.0.0.1:2181``) stay
last.

An unreachable ensemble is one line that says where its address came from and the ways
to point zkq at a cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkq.coordinator.config import DEFAULT_CONFIG_FILE, read_config_file
from zkq.coordinator.errors import Unavailable, ZkqError

if TYPE_CHECKING:
    from zkq.coordinator.client import Client
    from zkq.dev.discovery import DevDir

log = logging.getLogger(__name__)

#: every way to name a cluster, for the messages
WAYS = (
    "--zk HOSTS, ZKQ_ZK_HOSTS, --config FILE or ZKQ_CONFIG, /etc/zkq/zkq.toml, "
    'or eval "$(zkq dev env)" run in a dev cluster\'s folder'
)


@dataclass(frozen=True)
class SettingsSource:
    """How a command's settings are layered: the flags, and what names its cluster."""

    flags: Mapping[str, Any]
    environ: Mapping[str, str]
    #: the config file named by --config or ZKQ_CONFIG, or the default one if it exists
    config_file: str | None
    #: the dev cluster's state directory seen from here, when nothing else names a cluster
    dev: DevDir | None = None
    #: that cluster's config file for the command's role, when it runs
    dev_config: Path | None = None

    @classmethod
    def find(
        cls, flags: Mapping[str, Any], environ: Mapping[str, str], command: str | None
    ) -> SettingsSource:
        named = flags.get("config_file") or environ.get("ZKQ_CONFIG") or None
        if named is None and DEFAULT_CONFIG_FILE.exists():
            named = str(DEFAULT_CONFIG_FILE)
        if named or flags.get("hosts") or environ.get("ZKQ_ZK_HOSTS"):
            return cls(flags, environ, named)
        from zkq.dev import discovery  # the launcher only when nothing names a cluster

        dev = discovery.find(environ)
        if dev is None or not dev.running:
            return cls(flags, environ, None, dev)
        role = discovery.role_of_command(command)
        config = dev.config_file(role)
        log.info("nothing names a cluster: using %s, as %s (%s)", dev.describe(), role, config)
        return cls(flags, environ, None, dev, config)

    def overrides(self) -> dict[str, Any]:
        """:meth:`ClusterConfig.load`'s overrides: the flags, and the dev cluster's config
        file when it is the one to use."""
        if self.dev_config is None:
            return dict(self.flags)
        return {**self.flags, "config_file": str(self.dev_config)}

    def origin(self) -> str:
        """Where the ZooKeeper hosts came from, for a message."""
        if self.flags.get("hosts"):
            return "from --zk"
        if self.environ.get("ZKQ_ZK_HOSTS"):
            return "from ZKQ_ZK_HOSTS"
        if self.config_file is not None:
            if _names_hosts(self.config_file):
                return f"from the config file {self.config_file}"
            return f"zkq's default, as the config file {self.config_file} names none"
        if self.dev is not None and self.dev_config is not None:
            return f"from {self.dev.describe()}"
        if self.dev is not None:
            return f"zkq's default, as {self.dev.describe()}"
        return "zkq's default, as nothing names a cluster and no dev cluster runs from here"

    def unreachable(self, hosts: str, timeout: float) -> str:
        """The one line for an ensemble that did not answer."""
        if self.dev is not None and self.dev_config is not None:
            advice = f"see `zkq dev status`, or point zkq at another cluster with {WAYS}"
        elif self.dev is not None and self._default_hosts():
            advice = f"start it with `zkq dev up`, or point zkq at a cluster with {WAYS}"
        elif self._default_hosts():
            advice = (
                f"start a local one with `zkq dev up` here, or point zkq at a cluster with {WAYS}"
            )
        else:
            advice = f"is that ensemble running? Or point zkq at another cluster with {WAYS}"
        return (
            f"could not reach ZooKeeper at {hosts} ({self.origin()}) within {timeout:g}s: {advice}"
        )

    def start(self, client: Client) -> None:
        """Start ``client``; an unreachable ensemble says where it came from and what to do."""
        try:
            client.start()
        except Unavailable as exc:
            message = self.unreachable(client.config.zk.hosts, client.connect_timeout)
            raise Unavailable(message) from exc

    def _default_hosts(self) -> bool:
        return self.origin().startswith("zkq's default")


def _names_hosts(path: str) -> bool:
    try:
        return "hosts" in read_config_file(path)
    except ZkqError:
        return False

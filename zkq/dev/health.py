"""Whether a dev cluster is well: what ``up`` waits for, and what ``zkq dev status`` reports.

A process that is alive is not yet a service that works.  The ensemble serves once one node
leads and every other follows; coordinators and workers once ZooKeeper lists them
(:mod:`.registrations`); the other members once their probe passes (:mod:`.members`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from zkq.coordinator.acl import Role
from zkq.dev.errors import DevClusterError, StartupFailed
from zkq.dev.members import Roster, check_alive
from zkq.dev.registrations import count_registrations
from zkq.dev.waiting import wait_until
from zkq.dev.zookeeper import ZooKeeperEnsemble, all_serving


def wait_registered(roster: Roster, workers: int, coordinators: int, timeout: float) -> None:
    """Wait until ZooKeeper lists that many workers and election contenders; fail at once,
    with its log, when a member dies meanwhile."""

    def registered() -> bool:
        check_alive(roster.members)
        counts = count_registrations(
            roster.connect_string, roster.root, zk_options=roster.zk_options(Role.OPERATOR)
        )
        return counts["workers"] >= workers and counts["coordinators"] >= coordinators

    try:
        wait_until(
            registered,
            timeout,
            interval=0.2,
            what=f"{workers} worker(s) and {coordinators} coordinator(s) to register",
        )
    except TimeoutError as exc:
        raise StartupFailed(str(exc)) from exc


def not_running(state_dir: Path) -> dict[str, Any]:
    return {
        "state_dir": str(state_dir),
        "running": False,
        "ok": False,
        "zookeeper": [],
        "members": [],
    }


def report(roster: Roster, ensemble: ZooKeeperEnsemble | None) -> dict[str, Any]:
    """Every ZooKeeper node and member, what is registered, and whether all is well."""
    zk = ensemble.status() if ensemble is not None else []
    members = [m.status() for m in roster.members]
    modes = [n["mode"] for n in zk]
    registered = None
    # without a serving node, asking would only wait for the connection to time out
    if ensemble is not None and modes.count("leader") + modes.count("standalone"):
        with contextlib.suppress(DevClusterError):
            registered = count_registrations(
                roster.connect_string,
                roster.root,
                timeout=2.0,
                zk_options=roster.zk_options(Role.OPERATOR),
            )
    return {
        "state_dir": str(roster.state_dir),
        "running": True,
        "ok": all_serving(modes) and all(m["healthy"] for m in members),
        "connect": ensemble.connect_string if ensemble is not None else None,
        "root": roster.root,
        "zookeeper": zk,
        "members": members,
        "registered": registered,
    }

"""The zkq services of a dev cluster, coordinators and workers: how ``up`` was asked to run
them, and the command lines that start them.

Each is ``python -m zkq coordinator|worker --zk ... --root ...`` with this interpreter, so
it runs the same zkq from the same virtualenv as the launcher.  Settings that are secret
(the MySQL URL) or that every service shares (the session timeout) go in the environment
instead (:attr:`ServiceSettings.env`): an argv is visible to every local user in ``ps``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class ServiceSettings:
    """How ``up`` was asked to run the services; ``add_worker`` reuses it later, also from
    another process (it is kept in the state file)."""

    root: str = "/zkq"
    worker_app: str = "zkq.worker.builtin"
    worker_concurrency: int = 4
    coordinator_args: list[str] = field(default_factory=list)
    worker_args: list[str] = field(default_factory=list)
    #: laid over the environment of every member the cluster starts
    env: dict[str, str] = field(default_factory=dict)

    def coordinator_argv(self, connect: str, extra_args: Sequence[str] = ()) -> list[str]:
        return zkq_argv("coordinator", connect, self.root, *self.coordinator_args, *extra_args)

    def worker_argv(
        self,
        connect: str,
        app: str | None = None,
        concurrency: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> list[str]:
        options = [
            *("--app", app or self.worker_app),
            *("--concurrency", str(concurrency or self.worker_concurrency)),
        ]
        return zkq_argv("worker", connect, self.root, *options, *self.worker_args, *extra_args)


def zkq_argv(command: str, connect: str, root: str, *args: str) -> list[str]:
    """``python -m zkq <command>`` against one cluster: the same interpreter and venv."""
    return [sys.executable, "-m", "zkq", command, "--zk", connect, "--root", root, *args]


def session_timeout(
    tick_ms: int, session_timeout_ms: int | None
) -> tuple[dict[str, str], int | None, int | None]:
    """What the services ask of ZooKeeper: their environment, and the ensemble's
    ``minSessionTimeout`` and ``maxSessionTimeout`` that grant it (``None``: ZooKeeper's)."""
    if session_timeout_ms is None:
        return {}, None, None
    # ZooKeeper clamps a requested timeout into [min, max] (defaults: 2 and 20 ticks), so a
    # fast-expiring test session needs the lower bound lowered.
    return (
        {"ZKQ_SESSION_TIMEOUT": f"{session_timeout_ms / 1000:g}"},
        min(2 * tick_ms, session_timeout_ms),
        max(20 * tick_ms, session_timeout_ms),
    )

"""The launcher's branch of zkq's exception tree (:mod:`zkq.coordinator.errors`).

::

    ZkqError
    └── DevClusterError          the local cluster could not do what was asked
        ├── ZooKeeperNotInstalled   Debian's zookeeper package (or java) is missing
        ├── StartupFailed           a process died or never became ready; says which, with
        │                           the tail of its log
        ├── AlreadyRunning          ``up`` found a live cluster from the same state directory
        └── BadState                the state file is unreadable or names no such member

``wait_until`` raises the builtin :class:`TimeoutError`; the launcher turns the ones that
mean "never became ready" into :class:`StartupFailed`.
"""

from __future__ import annotations

from zkq.coordinator.errors import ZkqError


class DevClusterError(ZkqError):
    code = "dev_cluster_error"


class ZooKeeperNotInstalled(DevClusterError):
    code = "zookeeper_not_installed"


class StartupFailed(DevClusterError):
    code = "startup_failed"


class AlreadyRunning(DevClusterError):
    code = "already_running"


class BadState(DevClusterError):
    code = "bad_state"

"""A worker with lost slots: what it tells the leader, and how it starts afresh.

A lost slot is one whose revoked handler could not be stopped (:mod:`zkq.worker.pools`).
The worker's registration counts them (``lost_slots``) so the leader assigns around them
(:meth:`zkq.coordinator.roster.WorkerView.idle`); past ``--max-lost-slots`` the worker
drains and :func:`restart_in_place` replaces its process image.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from zkq.coordinator.registration import BadRegistration, WorkerInfo
from zkq.coordinator.zk import BadVersion, NoNode, ZkSession

log = logging.getLogger(__name__)

#: a worker that cannot restart in place exits with EX_TEMPFAIL: its supervisor restarts it
EXIT_RESTART = 75


def rewrite_registration(
    session: ZkSession, path: str, worker_id: str, change: Callable[[WorkerInfo], WorkerInfo]
) -> bool:
    """Rewrite the registration at ``path`` as ``change`` makes it, versioned (what somebody
    else wrote meanwhile, an operator's drain, is not undone).  False: it changed under us,
    try again later."""
    try:
        raw, stat = session.get(path)
        info = WorkerInfo.from_bytes(worker_id, raw)
        new = change(info)
        if new != info:
            session.set(path, new.to_bytes(), version=stat.version)
    except NoNode:
        pass  # deregistered: a new registration says it afresh
    except BadVersion:
        return False
    except BadRegistration as exc:  # edited by hand: the leader ignores it anyway
        log.warning("%s", exc)
    return True


def publish_lost_slots(session: ZkSession, path: str, worker_id: str, lost: int) -> bool:
    """Rewrite the registration at ``path`` with ``lost`` lost slots.  False: try again."""
    return rewrite_registration(session, path, worker_id, lambda info: info.losing(lost))


def restart_in_place() -> None:
    """Replace this process's image with a fresh ``zkq worker`` (the same command line):
    the only end for threads that will not stop.  The pid and its start time stay, so a
    supervisor (or ``zkq dev``, which knows its processes by both) sees the same process.
    The ZooKeeper session is closed by then; sockets are not inherited (PEP 446)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
    except OSError as exc:
        log.error("cannot restart in place (%s): exiting for the supervisor to restart", exc)
        os._exit(EXIT_RESTART)

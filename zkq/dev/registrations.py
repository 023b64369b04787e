"""What ZooKeeper says is registered: the one place the launcher reads zkq's znodes.

A process that runs is not yet a process that serves: a worker counts once its ephemeral
registration exists, a coordinator once it contends in the election.  The paths come from
:mod:`zkq.coordinator.paths` (the one module that spells them).
"""

from __future__ import annotations

import logging

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from zkq.coordinator.paths import Layout
from zkq.dev.errors import DevClusterError

# kazoo logs every failed connection attempt; a status probe must not print them, since
# the node being down is exactly what the caller is asking about.
_log = logging.getLogger("zkq.dev.kazoo")
_log.addHandler(logging.NullHandler())
_log.propagate = False


def count_registrations(connect: str, root: str, timeout: float = 5.0) -> dict[str, int]:
    """``{"workers": n, "coordinators": n}`` as registered under ``root`` right now."""
    layout = Layout(root)
    client = KazooClient(hosts=connect, timeout=timeout, logger=_log)
    try:
        client.start(timeout=timeout)
        counts = {}
        for key, path in (("workers", layout.workers), ("coordinators", layout.election)):
            try:
                counts[key] = len(client.get_children(path))
            except NoNodeError:
                counts[key] = 0  # nobody created the parent yet
        return counts
    except (KazooException, KazooTimeoutError) as exc:
        raise DevClusterError(
            f"cannot read registrations from ZooKeeper at {connect}: {exc!r}"
        ) from exc
    finally:
        client.stop()
        client.close()

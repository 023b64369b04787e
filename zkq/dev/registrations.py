"""What ZooKeeper says is registered: the one place the launcher reads zkq's znodes.

A process that runs is not yet a process that serves: a worker counts once its ephemeral
registration exists, a coordinator once it contends in the election.  The paths come from
:mod:`zkq.coordinator.paths` (the one module that spells them).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from zkq.coordinator import zk
from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import Unavailable
from zkq.coordinator.paths import Layout
from zkq.dev.errors import DevClusterError


def count_registrations(
    connect: str, root: str, timeout: float = 5.0, zk_options: Mapping[str, str] | None = None
) -> dict[str, int]:
    """``{"workers": n, "coordinators": n}`` as registered under ``root`` right now;
    ``zk_options``: the credential to read with (the read-only operator's)."""
    layout = Layout(root)
    deadline = time.monotonic() + timeout
    # quiet: the node being down is exactly what a caller may be asking about, so the
    # client's narration of its failed connection attempts must not be printed
    settings = ClusterConfig.load(
        environ={}, hosts=connect, root=root, session_timeout=timeout, **(zk_options or {})
    ).zk
    session = zk.connect(
        settings,
        name="registrations",
        quiet=True,
    )
    try:
        if not session.start(wait=timeout):
            raise Unavailable(f"no connection within {timeout:g}s")
        # a parent nobody created yet lists as None: nobody registered
        listed = session.get_children_many([layout.workers, layout.election], deadline=deadline)
        return {
            "workers": len(listed[layout.workers] or []),
            "coordinators": len(listed[layout.election] or []),
        }
    except Unavailable as exc:
        raise DevClusterError(
            f"cannot read registrations from ZooKeeper at {connect}: {exc}"
        ) from exc
    finally:
        session.stop()

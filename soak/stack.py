"""The soak's own cluster: in a state dir of its own, stopped when the soak ends however it
ends, and kept (state, logs, execution records) when it failed or a dir was given."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from zkq.dev.cluster import DevCluster


@contextmanager
def soak_cluster(
    state_dir: Path | None, progress: Callable[[str], None]
) -> Iterator[tuple[DevCluster, Path, dict[str, bool]]]:
    """The cluster, its base dir, and ``{"keep": ...}``: set it to keep the files."""
    keep = {"keep": state_dir is not None}
    base = state_dir if state_dir is not None else Path(tempfile.mkdtemp(prefix="zkq-soak-"))
    cluster = DevCluster(base / "cluster")
    try:
        yield cluster, base, keep
    except BaseException:
        keep["keep"] = True  # the logs and records are what explains a failure
        progress(f"failed: state, logs and records kept in {base}")
        raise
    finally:
        progress("stopping every process the soak started")
        cluster.down(timeout=15)
        if not keep["keep"]:
            shutil.rmtree(base, ignore_errors=True)

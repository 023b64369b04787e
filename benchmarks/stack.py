"""The bench's own cluster: brought up in a state dir of its own, stopped when the bench
ends however it ends, and kept (state, logs) when the run failed or a dir was given."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from zkq.dev.cluster import DevCluster


@contextmanager
def bench_cluster(
    state_dir: Path | None, progress: Callable[[str], None], prefix: str = "zkq-bench-"
) -> Iterator[tuple[DevCluster, Path]]:
    keep = state_dir is not None
    base = state_dir if state_dir is not None else Path(tempfile.mkdtemp(prefix=prefix))
    cluster = DevCluster(base / "cluster")
    try:
        yield cluster, base
    except BaseException:
        keep = True  # the logs are what explains a failure
        progress(f"failed: state and logs kept in {base}")
        raise
    finally:
        progress("stopping every process the bench started")
        cluster.down()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"

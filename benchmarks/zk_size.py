"""ZooKeeper's size over a long run: a steady paced load while the coordinators prune, with
the ensemble's ``zk_approximate_data_size`` and ``zk_znode_count`` sampled every few
seconds next to the jobs submitted, still queued and archived.

Everything read here is read-only and cheap: ``mntr`` on each node (a four-letter word, no
session), one pipelined census of the queues and inboxes, one ``COUNT(*)`` of the archive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from benchmarks.http_load import JOIN_GRACE, SubmitterFactory, Tally, open_loop
from benchmarks.http_results import RetentionRun, SizeSample
from zkq.coordinator import census
from zkq.coordinator.client import Client
from zkq.coordinator.errors import ZkqError
from zkq.coordinator.mysql import ConnectionPool
from zkq.dev.fourletter import four_letter, parse_mntr
from zkq.dev.zookeeper import HOST, ZooKeeperEnsemble

Progress = Callable[[str], None]
LEADER_STATES = ("leader", "standalone")


def zk_size(ensemble: ZooKeeperEnsemble) -> tuple[int, int]:
    """(approximate data bytes, znode count) as the leader reports them (every node holds
    the same tree; the leader's copy is the one that is never behind)."""
    readings: list[dict[str, str]] = []
    for node in ensemble.nodes:
        try:
            readings.append(parse_mntr(four_letter(HOST, node.client_port, "mntr", 2.0)))
        except OSError:
            continue
    leader = next((m for m in readings if m.get("zk_server_state") in LEADER_STATES), None)
    chosen = leader or (readings[0] if readings else None)
    if chosen is None:
        raise OSError("no ZooKeeper node answered mntr")
    return int(chosen["zk_approximate_data_size"]), int(chosen["zk_znode_count"])


def backlog(client: Client, timeout: float = 5.0) -> int:
    """Jobs not yet ended: pending entries plus inbox entries (assigned or running)."""
    deadline = time.monotonic() + timeout
    queued = sum(q.depth for q in census.queues(client.session, deadline))
    held = sum(len(w.inbox) for w in census.workers(client.session, deadline))
    return queued + held


def archived(pool: ConnectionPool) -> int:
    with pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM job_archive")
        row = cur.fetchone()
    return int(row[0]) if row else 0


def wait_drained(client: Client, cap: float, interval: float = 0.2) -> float | None:
    """Seconds until the backlog reads zero, or None when ``cap`` passed first."""
    started = time.monotonic()
    while True:
        try:
            if backlog(client) == 0:
                return time.monotonic() - started
        except ZkqError:
            pass  # a slow census is "not yet"
        if time.monotonic() - started >= cap:
            return None
        time.sleep(interval)


def long_run(
    factory: SubmitterFactory,
    ensemble: ZooKeeperEnsemble,
    client: Client,
    pool: ConnectionPool,
    *,
    retention: float,
    prune_interval: float,
    rate: float,
    seconds: float,
    connections: int,
    sample_every: float,
    progress: Progress,
) -> RetentionRun:
    """Submit at ``rate`` for ``seconds`` (open loop, on a thread) and sample meanwhile."""
    tally = Tally(connections)
    run = RetentionRun(
        retention=retention,
        prune_interval=prune_interval,
        rate=rate,
        seconds=seconds,
        connections=connections,
        ok=0,
        errors={},
        archived_before=_maybe(lambda: archived(pool)),
    )
    failure: list[BaseException] = []

    def load() -> None:
        try:
            open_loop(factory, rate, seconds, connections, tally)
        except BaseException as exc:  # handed to the sampling thread, which raises it
            failure.append(exc)

    loader = threading.Thread(target=load, name="long-run", daemon=True)
    started = time.monotonic()
    loader.start()
    next_at = started
    while loader.is_alive() and not failure and next_at < started + seconds:
        run.samples.append(_sample(time.monotonic() - started, ensemble, client, pool, tally))
        last = run.samples[-1]
        progress(
            f"long run: {last.t:3.0f}s  {last.submitted} submitted, "
            f"{last.znodes} znodes, {last.data_bytes // 1024} KiB"
        )
        next_at += sample_every
        loader.join(max(0.0, min(next_at, started + seconds) - time.monotonic()))
    # the load's own bound (open_loop stops at its deadline); then one last sample
    loader.join(max(0.0, started + seconds - time.monotonic()) + JOIN_GRACE)
    if failure:
        raise failure[0]
    run.samples.append(_sample(time.monotonic() - started, ensemble, client, pool, tally))
    run.ok = tally.ok
    run.errors = dict(tally.errors)
    run.archived_after = _maybe(lambda: archived(pool))
    return run


def _sample(
    t: float, ensemble: ZooKeeperEnsemble, client: Client, pool: ConnectionPool, tally: Tally
) -> SizeSample:
    submitted = tally.submitted  # before the census: processed is then never overstated
    data_bytes, znodes = zk_size(ensemble)
    return SizeSample(
        t=round(t, 1),
        data_bytes=data_bytes,
        znodes=znodes,
        submitted=submitted,
        backlog=_maybe(lambda: backlog(client)),
        archived=_maybe(lambda: archived(pool)),
    )


def _maybe(read: Callable[[], int]) -> int | None:
    """A reading, or None when its service did not answer in time (shown as "-")."""
    try:
        return read()
    except ZkqError:
        return None

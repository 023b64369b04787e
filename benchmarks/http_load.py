"""Load for the HTTP bench: a closed loop (N connections, each sending as soon as its last
answer came) and an open loop (sends paced at a fixed rate, whatever the answers do).

Kept cheap, since it shares two CPUs with everything it measures: one thread per
connection, ``http.client`` on a keep-alive connection, one body encoded once, no
``requests`` (whose per-request work would be counted as the server's).  The same loops
drive direct submissions through :class:`zkq.coordinator.client.Client`, so the two paths are
measured alike.

Every loop is bounded in time: a thread sends nothing after its deadline, each request has
a socket timeout, and the caller joins the threads with a timeout.

Open-loop latency counts from the moment a request was *due*, not from when a thread got
round to it: a generator that falls behind then shows up as latency rather than hiding it
(coordinated omission).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from zkq.coordinator.client import Client
from zkq.coordinator.errors import ZkqError

#: the body of every HTTP submission: a job for worker.builtin that does nothing
NOOP = {"type": "noop"}
REQUEST_TIMEOUT = 10.0
#: what joining the threads may wait past a loop's end (a request in flight may take
#: up to REQUEST_TIMEOUT)
JOIN_GRACE = REQUEST_TIMEOUT + 5.0


class Submitter(Protocol):
    """One connection's worth of submissions: ``send()`` submits one job and returns
    ``None`` when it was accepted, else a short label of what went wrong."""

    def send(self) -> str | None: ...

    def close(self) -> None: ...


SubmitterFactory = Callable[[], Submitter]


class HttpSubmitter:
    """``POST /v1/jobs`` on one keep-alive connection, reconnecting after an error."""

    def __init__(self, base_url: str, headers: dict[str, str], path: str = "/v1/jobs") -> None:
        parts = urlsplit(base_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"not an http://host:port URL: {base_url!r}")
        self.host, self.port = parts.hostname, parts.port
        self.path = path
        self.body = json.dumps(NOOP).encode()
        self.headers = {"Content-Type": "application/json", **headers}
        self._conn: http.client.HTTPConnection | None = None

    def send(self) -> str | None:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        try:
            self._conn.request("POST", self.path, self.body, self.headers)
            response = self._conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return type(exc).__name__
        if response.will_close:
            self.close()
        return None if response.status == 201 else str(response.status)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass
class Tally:
    """What one loop did; filled by its threads under a lock."""

    connections: int
    seconds: float = 0.0  # the measured window
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # of accepted submissions
    target_rate: float | None = None  # open loop only
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, error: str | None, latency_s: float) -> None:
        with self._lock:
            if error is None:
                self.ok += 1
                self.latencies_ms.append(latency_s * 1000.0)
            else:
                self.errors[error] += 1

    @property
    def submitted(self) -> int:
        """Accepted so far (read while the loop runs, too)."""
        with self._lock:
            return self.ok


def _run_threads(
    count: int, target: Callable[[Submitter], None], factory: SubmitterFactory, name: str
) -> None:
    submitters = [factory() for _ in range(count)]
    threads = [
        threading.Thread(target=target, args=(s,), name=f"{name}-{i}", daemon=True)
        for i, s in enumerate(submitters)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for s in submitters:
            s.close()


def closed_loop(
    factory: SubmitterFactory,
    connections: int,
    seconds: float,
    warmup: float = 0.0,
) -> Tally:
    """``connections`` threads submit back to back for ``warmup + seconds``; only what
    *ends* inside the last ``seconds`` counts (the warm-up opens connections and fills
    the frontends' key caches)."""
    tally = Tally(connections, seconds)
    start = time.perf_counter() + 0.05  # every thread is up before the clock starts
    counted_from = start + warmup
    end = counted_from + seconds

    def work(submitter: Submitter) -> None:
        time.sleep(max(0.0, start - time.perf_counter()))
        while (sent := time.perf_counter()) < end:
            error = submitter.send()
            done = time.perf_counter()
            if counted_from <= done <= end:
                tally.add(error, done - sent)

    _bounded(lambda: _run_threads(connections, work, factory, "closed"), warmup + seconds)
    return tally


def open_loop(
    factory: SubmitterFactory,
    rate: float,
    seconds: float,
    connections: int,
    tally: Tally | None = None,
) -> Tally:
    """Submissions due every ``1/rate`` seconds for ``seconds``, taken in turn by
    ``connections`` threads; latency from each one's due time.  Pass a ``tally`` to read
    its progress from another thread while this runs.

    A stack that cannot keep the pace does not stretch the loop: once its time is over,
    submissions still waiting for a free connection are dropped (the achieved rate, below
    the target, says so)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    tally = tally or Tally(connections)
    tally.seconds, tally.target_rate = seconds, rate
    total = max(1, int(rate * seconds))
    start = time.perf_counter() + 0.05
    end = start + seconds
    lock = threading.Lock()
    next_slot = [0]

    def work(submitter: Submitter) -> None:
        while True:
            with lock:
                slot = next_slot[0]
                next_slot[0] += 1
            if slot >= total or time.perf_counter() > end:
                return
            due = start + slot / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            error = submitter.send()
            tally.add(error, time.perf_counter() - due)

    _bounded(lambda: _run_threads(connections, work, factory, "paced"), seconds)
    return tally


def _bounded(run: Callable[[], None], seconds: float) -> None:
    """Run a loop on a helper thread and give it its time plus a grace: a wedged server
    cannot hang the bench (the stuck threads are daemons and die with it)."""
    runner = threading.Thread(target=run, name="load", daemon=True)
    runner.start()
    runner.join(seconds + JOIN_GRACE)
    if runner.is_alive():
        raise TimeoutError(
            f"the load did not finish within {seconds + JOIN_GRACE:g}s of its start: "
            "a request hangs past its timeout"
        )


class DirectSubmitter:
    """``Client.submit`` of one job, straight into ZooKeeper: the ceiling without HTTP.
    Threads share one client (one session), as a frontend process's greenlets do."""

    def __init__(self, client: Client, timeout: float = REQUEST_TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout

    def send(self) -> str | None:
        try:
            self.client.submit(NOOP["type"], request_timeout=self.timeout)
        except ZkqError as exc:
            return type(exc).__name__
        return None

    def close(self) -> None:
        pass  # the client belongs to the caller

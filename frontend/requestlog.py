"""The request log (``request_log``): rows buffered in memory, written in batches.

No request waits on MySQL for its log line: :meth:`RequestLog.record` only appends to a
bounded buffer, and a background thread (a greenlet under gevent, whose patched
``threading`` this uses) writes the buffer with one multi-row INSERT every
``flush_interval`` seconds, or as soon as ``batch_size`` rows wait.

When MySQL is down the rows stay buffered and the flusher retries with backoff.  The
buffer is bounded: once full, the *oldest* rows are dropped and counted in
:attr:`RequestLog.dropped`, so memory stays flat through a long outage and the newest
traffic (the most useful when it comes back) is kept.  :meth:`close` flushes what is left.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass

from zkq.coordinator.errors import DatabaseUnavailable, InvalidJobId, ZkqError
from zkq.coordinator.ids import validate_job_id
from zkq.coordinator.mysql import ConnectionPool, to_datetime

log = logging.getLogger(__name__)

_INSERT = (
    "INSERT INTO request_log (at, key_id, tenant, method, path, status, latency_ms, "
    "job_id, client_addr) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
#: column widths of request_log (values are cut to fit rather than refused)
_WIDTHS = {"tenant": 64, "method": 16, "path": 512, "client_addr": 45}
MAX_BACKOFF = 10.0


@dataclass(frozen=True)
class RequestRecord:
    """One served request."""

    at: float  # Unix time the request arrived
    method: str
    path: str
    status: int
    latency_ms: float
    key_id: int | None = None
    tenant: str | None = None
    job_id: str | None = None
    client_addr: str | None = None

    def row(self) -> tuple[object, ...]:
        job_id = self.job_id
        if job_id is not None:
            try:
                validate_job_id(job_id)
            except InvalidJobId:
                job_id = None  # a bad id in a URL is the client's; log the request anyway
        return (
            to_datetime(self.at),
            self.key_id,
            _cut(self.tenant, "tenant"),
            _cut(self.method, "method"),
            _cut(self.path, "path"),
            max(0, min(int(self.status), 65535)),
            max(0, round(self.latency_ms)),
            job_id,
            _cut(self.client_addr, "client_addr"),
        )


def _cut(value: str | None, column: str) -> str | None:
    return None if value is None else value[: _WIDTHS[column]]


class RequestLog:
    def __init__(
        self,
        pool: ConnectionPool,
        flush_interval: float = 1.0,
        batch_size: int = 500,
        max_buffer: int = 20_000,
    ) -> None:
        if max_buffer < batch_size:
            raise ValueError("max_buffer must hold at least one batch")
        self.pool = pool
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        #: rows dropped because the buffer was full (MySQL away too long) or refused
        self.dropped = 0
        #: rows written
        self.written = 0
        self._buffer: collections.deque[RequestRecord] = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        #: set while MySQL is failing: a full batch then waits for the backoff, rather
        #: than wake the flusher into a retry per request
        self._failing = False

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._buffer)

    def record(self, entry: RequestRecord) -> None:
        """Queue a row; never blocks on MySQL.  Starts the flusher on first use in each
        process, so a log made before gunicorn forks still flushes in every worker."""
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(entry)
            full = len(self._buffer) >= self.batch_size
        if full and not self._failing:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._closing.clear()
            self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
            self._thread.start()

    def flush(self) -> int:
        """Write every buffered row now, batch by batch; returns how many were written.
        Raises :class:`~zkq.coordinator.errors.DatabaseUnavailable` (rows stay buffered)."""
        total = 0
        while True:
            with self._lock:
                count = min(self.batch_size, len(self._buffer))
                batch = [self._buffer.popleft() for _ in range(count)]
            if not batch:
                return total
            try:
                with self.pool.connection() as conn, conn.cursor() as cur:
                    cur.executemany(_INSERT, [entry.row() for entry in batch])
            except DatabaseUnavailable:
                self._put_back(batch)
                raise
            except ZkqError as exc:
                # refused for good (schema missing, a value MySQL will not take): retrying
                # the same rows would block the log forever
                with self._lock:
                    self.dropped += len(batch)
                log.error("dropped %d request-log rows: %s", len(batch), exc)
                continue
            with self._lock:
                self.written += len(batch)
            total += len(batch)

    def _put_back(self, batch: list[RequestRecord]) -> None:
        """Return an unwritten batch to the front, oldest rows yielding to newer ones."""
        with self._lock:
            room = self.max_buffer - len(self._buffer)
            keep = batch[len(batch) - room :] if room < len(batch) else batch
            self.dropped += len(batch) - len(keep)
            self._buffer.extendleft(reversed(keep))

    def _run(self) -> None:
        backoff = 0.0
        while not self._closing.is_set():
            self._wake.wait(self.flush_interval + backoff)
            self._wake.clear()
            try:
                self.flush()
                backoff = 0.0
                self._failing = False
            except DatabaseUnavailable as exc:
                self._failing = True
                backoff = min(MAX_BACKOFF, backoff * 2 or self.flush_interval)
                log.warning(
                    "request log: MySQL unavailable (%s); %d row(s) buffered, %d dropped",
                    exc,
                    self.pending,
                    self.dropped,
                )
            except Exception:  # the flusher must outlive any bug in one batch
                log.exception("request log flush failed")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the flusher and write what is left, trying until ``timeout`` passes;
        rows still unwritten then are counted as dropped."""
        self._closing.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            try:
                self.flush()
            except DatabaseUnavailable:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        with self._lock:
            self.dropped += len(self._buffer)
            self._buffer.clear()
        self._pid = 0

"""The frontend's ZooKeeper: one session and job store per worker *process*, and a bound on
every request's ZooKeeper work.

Why per process, and why after fork: a ZooKeeper client owns a socket and a thread (or
greenlets); a forked copy would share the socket with its parent and send interleaved
frames.  So nothing connects at import or in gunicorn's master: the session starts in
gunicorn's ``post_worker_init`` hook (after gevent has patched the worker) or, outside
gunicorn, on first use; and a pid check makes a forked copy start its own.

Why the deadlines are enforced here as well as passed down: the session's synchronous
calls queue a request while the client is disconnected and wait for the reconnection with
no limit, so a deadline handed to :meth:`ZkSession.retry` alone does not bound a call that
starts just as the connection drops.  Each request therefore (1) waits at most
``ZK_DISCONNECTED_WAIT`` (about a second) for a connection it does not have, failing with
:class:`~zkq.coordinator.errors.Unavailable` (503), and (2) under gevent runs its ZooKeeper
work inside a :class:`gevent.Timeout`, so no greenlet waits past the deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

from zkq.coordinator.config import ClusterConfig
from zkq.coordinator.errors import JobNotFound, Timeout, Unavailable
from zkq.coordinator.ids import validate_job_id
from zkq.coordinator.job import Job
from zkq.coordinator.store import JobStore
from zkq.coordinator.zk import NoNode, WatchEvent, ZkSession, connect, zk_errors
from zkq.frontend.served import ServedTypes

log = logging.getLogger(__name__)

#: a long-poll reads the job again this often, so that a connection lost mid-wait is noticed
WAIT_SLICE = 2.0


def gevent_patched() -> bool:
    """True in a gevent-patched process (gunicorn's gevent workers)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return bool(monkey.is_module_patched("socket"))


@contextlib.contextmanager
def _hard_limit(seconds: float) -> Iterator[None]:
    """Under gevent, interrupt the block after ``seconds`` with :class:`Timeout`."""
    if not gevent_patched():
        yield
        return
    import gevent

    with gevent.Timeout(seconds, Timeout(f"ZooKeeper did not answer within {seconds:g}s")):
        yield


class ZkGate:
    """This process's session and store, and the door every request's ZooKeeper work
    goes through (:meth:`call`)."""

    def __init__(
        self,
        config: ClusterConfig,
        timeout: float,
        disconnected_wait: float,
        ready_grace: float = 3.0,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.disconnected_wait = disconnected_wait
        self.ready_grace = ready_grace
        #: when this process last saw its session connected (monotonic); None: never
        self._seen_connected: float | None = None
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._session: ZkSession | None = None
        self._store: JobStore | None = None
        self._served: ServedTypes | None = None

    def start(self) -> None:
        """Start connecting (in the background) unless this process already has."""
        with self._lock:
            if self._pid == os.getpid():
                return
            # a forked copy's inherited client is the parent's: abandon it, do not close it
            gevent = gevent_patched()
            session = connect(self.config.zk, name="frontend", gevent=gevent)
            session.start()
            self._session = session
            self._store = JobStore(session, self.config.limits)
            self._served = ServedTypes(session)
            self._pid = os.getpid()
            self._seen_connected = None
            log.info(
                "pid %d connecting to ZooKeeper at %s (%s handler)",
                self._pid,
                self.config.zk.hosts,
                "gevent" if gevent else "threading",
            )

    def stop(self) -> None:
        with self._lock:
            if self._session is not None and self._pid == os.getpid():
                self._session.stop()
            self._session = self._store = self._served = None
            self._pid = None

    @property
    def session(self) -> ZkSession:
        self.start()
        assert self._session is not None
        return self._session

    @property
    def store(self) -> JobStore:
        self.start()
        assert self._store is not None
        return self._store

    @property
    def served(self) -> ServedTypes:
        """The job types the live workers serve, as this process keeps them."""
        self.start()
        assert self._served is not None
        return self._served

    @property
    def connected(self) -> bool:
        return self.session.connected.is_set()

    def ready(self) -> bool:
        """Connected, or connected until less than ``ready_grace`` seconds ago.

        A ZooKeeper leader's restart disconnects every client for the election, usually
        a second or two; the requests meanwhile wait for the reconnection themselves
        (``disconnected_wait``). Were readiness to fail at once, HAProxy would take every
        frontend out together and then want ``rise`` good checks to put them back: an
        outage of several seconds made from a blip. A process that has never been
        connected is not ready.
        """
        now = time.monotonic()
        if self.connected:
            self._seen_connected = now
            return True
        return self._seen_connected is not None and now - self._seen_connected < self.ready_grace

    @contextlib.contextmanager
    def call(self, timeout: float | None = None) -> Iterator[float]:
        """Bound one request's ZooKeeper work; yields its deadline (``time.monotonic()``).

        Raises :class:`Unavailable` at once (after a short wait) when disconnected.
        """
        session = self.session
        if not session.connected.is_set() and not session.wait_connected(self.disconnected_wait):
            raise Unavailable(
                f"ZooKeeper is unreachable from this frontend ({session.state}); retry later"
            )
        seconds = self.timeout if timeout is None else timeout
        # the hard limit fires a little after the deadline, so that code honouring the
        # deadline gets to raise its own, more precise error first
        with _hard_limit(seconds + 0.5):
            yield time.monotonic() + seconds

    def wait_job(self, job_id: str, seconds: float) -> Job:
        """Long-poll: the job's record once it ends or ``seconds`` pass, whichever is first.

        One data watch on the one job, so the answer leaves within a round trip of the
        job's last write.  The record is read again every :data:`WAIT_SLICE`, each read
        behind :meth:`call`: a connection lost during a long wait ends it with a 503 within
        a slice or two, instead of when the wait would end.

        Why one callback for the whole wait: kazoo keeps a set of callbacks per watched
        path, and a watch that never fires (a job that does not change) stays in it.  A new
        callback per slice would add one per slice; the same one re-arms the watch it
        already has, and it is forgotten when the wait ends.
        """
        end = time.monotonic() + seconds
        store = self.store
        session = store.session
        path = store.layout.job(validate_job_id(job_id))
        changed = threading.Event()

        def on_change(_event: WatchEvent) -> None:
            changed.set()

        def read() -> bytes:
            return session.get(path, watch=on_change)[0]

        try:
            while True:
                changed.clear()
                with self.call() as deadline, zk_errors():
                    try:
                        raw = session.retry(read, deadline, "long-poll")
                    except NoNode:
                        raise JobNotFound(job_id) from None
                job = Job.from_bytes(raw)
                remaining = end - time.monotonic()
                if job.terminal or remaining <= 0:
                    return job
                changed.wait(min(remaining, WAIT_SLICE))
        finally:
            session.forget_watch(path, on_change)

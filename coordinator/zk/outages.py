"""One clear line while ZooKeeper cannot be reached, instead of the client's narration.

kazoo logs a warning for every failed connection attempt ("Connection dropped: socket
connection error: Connection refused"), several a second, and a worker or coordinator
waiting out an outage keeps trying, as it should: its log became a stream of them.  A
service that calls :func:`report_outages` on its session gets instead:

- one warning every few seconds while it is disconnected: ``cannot reach ZooKeeper at
  HOSTS for 12 s (last error: socket connection error: Connection refused): still
  trying``, the first after a short grace so a blip (a leader election) says nothing;
- one line when it is connected again, if it had said the first.

kazoo's narration of its connection attempts (:data:`NARRATION`) is then logged at DEBUG
(``--log-level debug`` shows it); everything else kazoo says keeps its level, so a failed
authentication, an expired session or an exception in kazoo still shows as it did.
Sessions that do not report (the CLI's, the frontends') leave kazoo's logging alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zkq.coordinator.zk.session import ZkSession

#: how kazoo's messages about its connection attempts begin (its format strings)
NARRATION = (
    "Connecting to ",
    "Connection dropped",
    "Connection time-out",
    "Transition to CONNECTING",
    "Failed connecting to Zookeeper",
    "Cannot resolve",
    "Closing connection",
    "Found a RW server",
    "Zookeeper connection established",
    "Zookeeper connection lost",
)
#: those of them that say why an attempt failed: the "last error" of the report
FAILURES = ("Connection dropped: ", "Connection time-out: ", "Cannot resolve ")


class KazooLog(logging.LoggerAdapter):
    """The logger a kazoo client is given: it keeps the last connection error and, once
    :attr:`quiet` (the service reports outages itself), demotes kazoo's narration of its
    connection attempts to DEBUG."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger, {})
        #: why the last connection attempt failed, as kazoo said it
        self.last_error: str | None = None
        self.quiet = False

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(NARRATION):
            if msg.startswith(FAILURES):
                try:
                    self.last_error = (msg % args if args else msg).split(": ", 1)[-1]
                except (TypeError, ValueError):
                    self.last_error = msg
            if self.quiet:
                level = min(level, logging.DEBUG)
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


def report_outages(
    session: ZkSession, log: logging.Logger, first: float = 2.0, every: float = 5.0
) -> OutageReport:
    """For a service that waits out outages: while ``session`` is disconnected, one line
    on ``log`` every ``every`` seconds (the first after ``first``) instead of the client's
    narration, and one when connected again.  The thread ends when the session stops."""
    # a KazooSession's; an in-memory session narrates nothing
    narration = getattr(session, "narration", None)
    if isinstance(narration, KazooLog):
        narration.quiet = True
    report = OutageReport(session, log, narration, first, every)
    report.start()
    return report


class OutageReport:
    """The thread that writes the lines of the module's docstring for one session."""

    def __init__(
        self,
        session: ZkSession,
        log: logging.Logger,
        narration: KazooLog | None,
        first: float,
        every: float,
    ) -> None:
        self.session = session
        self.log = log
        self.narration = narration
        self.first = first
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"{session.name}-outages", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        hosts = self.session.settings.hosts
        down_since: float | None = None
        next_report = 0.0
        reported = False
        # a few checks a second: cheap, and no line is more than that late
        while not self._stop.wait(0.25):
            if self.session.stopping:
                return
            now = time.monotonic()
            if self.session.connected.is_set():
                if reported and down_since is not None:
                    self.log.info(
                        "connected to ZooKeeper at %s again after %.0f s", hosts, now - down_since
                    )
                if down_since is not None and self.narration is not None:
                    self.narration.last_error = None  # the next outage has its own
                down_since, reported = None, False
                continue
            if down_since is None:
                down_since, next_report = now, now + self.first
            if now >= next_report:
                last = self.narration.last_error if self.narration is not None else None
                self.log.warning(
                    "cannot reach ZooKeeper at %s for %.0f s (last error: %s): still trying",
                    hosts,
                    now - down_since,
                    last or "no answer yet",
                )
                reported, next_report = True, now + self.every

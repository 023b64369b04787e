"""The soak's submitters: jobs over HTTP through HAProxy, each with an Idempotency-Key.

A submission is retried, with the same key, until a frontend answers it with 2xx: while a
frontend is killed, MariaDB is down or ZooKeeper is electing, requests fail (a 503, a 502
from HAProxy, a reset connection), and a client that retries with its key must still end
up with exactly one job.  The job id of the first 2xx is what counts as *accepted*.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from soak.app import JOB_TYPE

#: what a failed submission is retried on: the service was unavailable, not the request bad
RETRIED = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class Accepted:
    n: int
    job_id: str
    at: float  # wall clock of the 2xx
    tries: int


@dataclass
class LoadResult:
    accepted: dict[str, Accepted] = field(default_factory=dict)  # job id -> submission
    #: submissions never answered with 2xx before their deadline (not accepted, not lost)
    unanswered: list[int] = field(default_factory=list)
    #: submissions refused with a 4xx we do not retry: a bug of the soak or of the API
    refused: list[tuple[int, int, str]] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # what the retries were for
    first_at: float | None = None
    last_at: float | None = None


class Load:
    """``jobs`` submissions at ``rate`` a second from ``threads`` threads."""

    def __init__(
        self,
        url: str,
        secret: str,
        jobs: int,
        rate: float,
        *,
        run_id: str,
        handler_ms: int,
        threads: int = 8,
        give_up_after: float = 180.0,
    ) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.jobs = jobs
        self.rate = rate
        self.run_id = run_id
        self.handler_ms = handler_ms
        self.give_up_after = give_up_after
        self.result = LoadResult()
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"soak-submit-{i}", daemon=True)
            for i in range(threads)
        ]
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    @property
    def submitted(self) -> int:
        with self._lock:
            return self._next

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.jobs or self._stop.is_set():
                return None
            n, self._next = self._next, self._next + 1
        # paced: submission n goes at start + n / rate, whatever the answers took
        delay = self._started + n / self.rate - time.monotonic()
        if delay > 0 and self._stop.wait(delay):
            return None
        return n

    def _run(self) -> None:
        session = requests.Session()
        try:
            while (n := self._take()) is not None:
                self._submit(session, n)
        finally:
            session.close()

    def _submit(self, session: requests.Session, n: int) -> None:
        body: dict[str, Any] = {
            "type": JOB_TYPE,
            "payload": {"n": n, "ms": self.handler_ms},
            "max_attempts": 20,
        }
        key = f"soak-{self.run_id}-{n}"
        deadline = time.monotonic() + self.give_up_after
        tries, pause = 0, 0.1
        while time.monotonic() < deadline and not self._stop.is_set():
            tries += 1
            try:
                r = session.post(
                    f"{self.url}/v1/jobs",
                    json=body,
                    headers={**self.headers, "Idempotency-Key": key},
                    timeout=15,
                )
            except requests.RequestException as exc:
                self._failed(type(exc).__name__)
            else:
                if 200 <= r.status_code < 300:
                    self._accepted(n, r.json()["id"], tries)
                    return
                if r.status_code not in RETRIED:
                    with self._lock:
                        self.result.refused.append((n, r.status_code, r.text[:200]))
                    return
                self._failed(str(r.status_code))
            self._stop.wait(pause)
            pause = min(2.0, pause * 2)
        with self._lock:
            self.result.unanswered.append(n)

    def _failed(self, what: str) -> None:
        with self._lock:
            self.result.failures[what] += 1

    def _accepted(self, n: int, job_id: str, tries: int) -> None:
        now = time.time()
        with self._lock:
            res = self.result
            res.accepted[job_id] = Accepted(n, job_id, now, tries)
            res.first_at = now if res.first_at is None else res.first_at
            res.last_at = now

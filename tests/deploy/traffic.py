"""Client traffic for the deployment tests: a steady submission loop through the floating
address that records every refused attempt and every accepted job, and the check that
every accepted job ran."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

from zkq import HttpClient, RateLimited, ZkqError


@dataclass
class Outage:
    """Attempts refused between two accepted submissions."""

    start: float
    end: float
    errors: int

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class SubmitLoop:
    """Submits a job every ``interval`` seconds from a thread until :meth:`stop`.

    Each logical submission keeps its Idempotency-Key across attempts (an attempt whose
    answer was lost may have been accepted: the retry returns the same job), and is retried
    every ``retry_every`` seconds until accepted or ``give_up_after`` seconds have passed;
    then it counts as failed.  Every refused attempt is recorded, so an outage can be
    measured from the client's side."""

    base_url: str
    api_key: str
    interval: float = 0.1
    job_type: str = "deploy.echo"
    retry_every: float = 0.1
    give_up_after: float = 30.0
    accepted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: (time, error text) of each refused attempt
    errors: list[tuple[float, str]] = field(default_factory=list)
    #: time of each accepted submission
    successes: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SubmitLoop:
        self._thread = threading.Thread(target=self._run, name="submit-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> SubmitLoop:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.give_up_after + 15)
        return self

    def _run(self) -> None:
        # no retries of the client's own: this loop retries, and sees every refusal
        client = HttpClient(self.base_url, self.api_key, timeout=3.0, retries=0)
        n = 0
        try:
            while not self._stop.is_set():
                n += 1
                self._submit_one(client, n)
                self._stop.wait(self.interval)
        finally:
            client.close()

    def _submit_one(self, client: HttpClient, n: int) -> None:
        key = str(uuid.uuid4())
        began = time.monotonic()
        while True:
            try:
                job = client.submit(self.job_type, {"n": n}, idempotency_key=key)
            except (ZkqError, requests.RequestException) as exc:
                now = time.monotonic()
                self.errors.append((now, f"{type(exc).__name__}: {exc}"[:200]))
                if now - began > self.give_up_after:
                    self.failed.append(key)
                    return
                time.sleep(self.retry_every)
                continue
            self.accepted.append(job.id)
            self.successes.append(time.monotonic())
            return

    def accepted_since(self, moment: float) -> int:
        """How many submissions were accepted after ``moment`` (time.monotonic())."""
        return sum(1 for at in self.successes if at > moment)

    def outages(self) -> list[Outage]:
        """Each run of refused attempts, from the last success before it to the first
        success after it."""
        found: list[Outage] = []
        successes = sorted(self.successes)
        for at, _ in sorted(self.errors):
            before = max((s for s in successes if s <= at), default=at)
            after = min((s for s in successes if s > at), default=time.monotonic())
            if found and found[-1].start == before:
                found[-1].errors += 1
            else:
                found.append(Outage(before, after, 1))
        return found

    def longest_outage(self) -> float:
        return max((o.seconds for o in self.outages()), default=0.0)


def unfinished(base_url: str, api_key: str, job_ids: list[str], timeout: float = 120) -> dict:
    """Wait for every job; returns those that did not succeed, id -> state (or error)."""
    deadline = time.monotonic() + timeout
    left: dict[str, str] = {}
    with HttpClient(base_url, api_key, timeout=5.0, retries=6) as client:
        for job_id in job_ids:
            while True:
                remaining = max(0.5, deadline - time.monotonic())
                try:
                    job = client.wait(job_id, remaining)
                except RateLimited as exc:
                    # not the job's doing: slow down and ask again
                    if time.monotonic() > deadline:
                        left[job_id] = f"{type(exc).__name__}: {exc}"
                        break
                    time.sleep(exc.retry_after or 1.0)
                    continue
                except ZkqError as exc:
                    left[job_id] = f"{type(exc).__name__}: {exc}"
                    break
                if job.state.value != "succeeded":
                    left[job_id] = job.state.value
                break
    return left

"""``zkq.HttpClient``: the REST API from Python (through HAProxy), on ``requests``.

::

    import zkq

    with zkq.HttpClient("http://lb:8080", api_key="zkq_...", timeout=10) as client:
        job = client.submit("resize", {"image": "a.png"}, priority=10)
        done = client.wait(job.id, timeout=60)
        print(done.state, done.result)

Retries: a connection that fails or a reply that never comes (a frontend killed, a proxy
restarting), and an answer that the service is unavailable (503, or HAProxy's 502/504),
are retried with backoff.  That is safe for every call: reads and cancels are idempotent,
and each submission carries an ``Idempotency-Key`` made once per *logical* submit, so the
server returns the same job however many times the request arrives.

Errors are the core's own classes (:mod:`zkq.coordinator.errors`), chosen by the error body's
``code``: a missing job raises :class:`~zkq.coordinator.errors.JobNotFound` here as it does
through :class:`zkq.coordinator.client.Client`.  Each carries ``.status`` (the HTTP status)
and ``.retry_after`` (the ``Retry-After`` header, when there was one).  No connection at
all raises :class:`~zkq.coordinator.errors.Unavailable` with ``status`` None.  Nothing but an
unavailable service is retried; a 429 is the caller's to slow down for.

Warnings: a submission the server accepted but has something to say about (no live worker
serves the job's type, so it waits until one does) comes back with ``warnings``; the client
logs each on the ``zkq.http_client`` logger at WARNING and keeps those of its last
submission in :attr:`HttpClient.last_warnings` (a client shared by threads: read the log).

HTTPS: the server's certificate is verified against ``ca_file`` (a PEM file of the CA
certificates to trust; ``zkq dev`` writes its cluster's as ``.zkq-dev/tls/ca.pem``), else
``ZKQ_CA_FILE`` from the environment, else the system's trust store.  A certificate that
does not verify raises :class:`CertificateRejected` at once (a :class:`ConfigError`: it is
the client's trust that must change, and retrying cannot help).
"""

from __future__ import annotations

import builtins
import logging
import os
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from zkq.coordinator.backoff import Backoff
from zkq.coordinator.errors import Conflict, Unavailable, WaitTimeout
from zkq.coordinator.job import Job
from zkq.http_bodies import checked, submission, timing
from zkq.http_schedules import HttpSchedules
from zkq.http_transport import (
    CA_FILE_ENV,
    CertificateRejected,
    error_of,
    tls_reason,
    trust,
    trusted,
)

if TYPE_CHECKING:
    from zkq.coordinator.job import JobSpec

log = logging.getLogger(__name__)

#: the server caps a long-poll at its MAX_WAIT (60 s by default); ask for less
LONG_POLL = 30.0


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None


class HttpClient:
    """The HTTP API from Python: submit jobs, wait for them, read, list and cancel them.

    ``base_url`` is the load balancer's: for the local cluster, the ``https:`` URL that
    ``make run`` and ``zkq dev status`` print (``zkq dev env`` exports it as ``ZKQ_URL``).
    ``api_key``: one from ``zkq keys create`` (or the demo key ``make run`` prints).  Over
    HTTPS the server is verified against ``ca_file``, else ``$ZKQ_CA_FILE``, else the
    system's CAs.  ``timeout``: seconds per request; ``retries`` and ``backoff``: how
    often, and how patiently, a request that found no live frontend is sent again.

    >>> import os, zkq
    >>> client = zkq.HttpClient(os.environ["ZKQ_URL"], api_key=KEY)
    >>> job = client.submit("echo", {"hello": "zkq"})
    >>> client.wait(job.id, timeout=30).result
    {'hello': 'zkq'}

    Errors are zkq's own (:class:`zkq.ZkqError` and below) and carry the HTTP ``.status``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.2,
        session: requests.Session | None = None,
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.http = session or requests.Session()
        #: what the server's certificate is verified with (see :func:`trust`)
        self.verify = trust(ca_file)
        self.http.headers["Authorization"] = f"Bearer {api_key}"
        #: the ``warnings`` of this client's last submission (``[]``: none)
        self.last_warnings: builtins.list[str] = []
        #: periodic schedules (:class:`~zkq.http_schedules.HttpSchedules`)
        self.schedules = HttpSchedules(self)

    def close(self) -> None:
        """Close the connections; ``with zkq.HttpClient(...) as client:`` does it for you.

        >>> client.close()
        """
        self.http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        """One logical request: the same bytes (and Idempotency-Key) on every attempt."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.http.request(
                    method,
                    self.base_url + path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=timeout or self.timeout,
                    # per request: requests lets REQUESTS_CA_BUNDLE override a session's
                    verify=self.verify,
                )
            except requests.exceptions.SSLError as exc:
                # not transient: the same certificate will fail the same way
                raise CertificateRejected(
                    f"{method} {path}: the TLS certificate of {self.base_url} is not trusted "
                    f"(verifying with {trusted(self.verify)}): give the cluster's CA "
                    f"file as ca_file or in {CA_FILE_ENV}; the TLS library said: {tls_reason(exc)}"
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt > self.retries:
                    raise Unavailable(
                        f"{method} {path}: no answer from {self.base_url}: {exc}"
                    ) from exc
                self._pause(attempt, None)
                continue
            if response.status_code < 400:
                return response
            error = error_of(response)
            if isinstance(error, Unavailable) and attempt <= self.retries:
                self._pause(attempt, error.retry_after)
                continue
            raise error

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        delay = self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, 5.0))
        time.sleep(delay)

    # -- jobs -------------------------------------------------------------------------------
    def submit(
        self,
        job_type: str,
        payload: Any = None,
        *,
        priority: int = 0,
        max_attempts: int = 1,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        run_at: float | datetime | None = None,
        delay: float | None = None,
        retry: Backoff | dict[str, Any] | None = None,
    ) -> Job:
        """Submit a job of ``job_type``; returns its record, ``pending`` (or ``scheduled``
        when due later).

        ``priority`` 0 (lowest) to 999; ``max_attempts``; ``timeout``: seconds per attempt.
        ``run_at`` (epoch seconds or an aware datetime) or ``delay`` (seconds from now, by
        the server's clock): not before then; ``retry``: how long a failed attempt waits
        (a :class:`zkq.Backoff` or its dict; without one, at once).
        The call's retries never make a second job (one ``Idempotency-Key`` per call);
        give ``idempotency_key`` to make your own retries of the call as safe.

        >>> job = client.submit("resize", {"image": "a.png"}, priority=5, max_attempts=3)
        >>> job.id, job.state
        ('01JC8ZQ4W6T3M5X9B2N7R0K1HD', <JobState.PENDING: 'pending'>)
        >>> later = client.submit("report", delay=600, retry=zkq.Backoff.fixed(30))
        >>> later.state, later.retry
        (<JobState.SCHEDULED: 'scheduled'>, {'backoff': 'fixed', 'delay': 30.0})
        """
        body = checked(
            {
                "type": job_type,
                "payload": payload,
                "priority": priority,
                "max_attempts": max_attempts,
                "timeout": timeout,
                **timing(run_at, delay, retry),
            }
        )
        key = idempotency_key or str(uuid.uuid4())  # once per logical submit
        response = self._request("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})
        data = response.json()
        self._warn(data)
        return Job.from_dict(data)

    def submit_batch(
        self, jobs: Sequence[JobSpec | dict[str, Any]], idempotency_key: str | None = None
    ) -> builtins.list[Job]:
        """Submit up to 1,000 jobs in one request; returns their records, in order.

        Each item a ``JobSpec`` (``handle.spec(payload)``) or a body as the API takes it,
        ``{"type": ..., "payload": ..., "priority": ..., ...}`` (``run_at``, ``delay``
        and ``retry`` as in :meth:`submit`).

        >>> jobs = client.submit_batch([{"type": "echo", "payload": n} for n in range(3)])
        >>> [job.payload for job in jobs]
        [0, 1, 2]
        >>> client.submit_batch([report.spec(p, delay=60) for p in payloads])
        """
        key = idempotency_key or str(uuid.uuid4())
        body = {"jobs": [submission(job) for job in jobs]}
        response = self._request(
            "POST", "/v1/jobs/batch", json=body, headers={"Idempotency-Key": key}
        )
        data = response.json()
        self._warn(data)
        return [Job.from_dict(j) for j in data["jobs"]]

    def _warn(self, body: dict[str, Any]) -> None:
        self.last_warnings = [str(w) for w in body.get("warnings") or []]
        for warning in self.last_warnings:
            log.warning("zkq: %s", warning)

    def get(self, job_id: str) -> Job:
        """The job's record as it is now (from the archive once pruned from ZooKeeper);
        :class:`zkq.JobNotFound` if the key's tenant has no such job.

        >>> job = client.get("01JC8ZQ4W6T3M5X9B2N7R0K1HD")
        >>> job.state, job.attempts, job.result
        (<JobState.SUCCEEDED: 'succeeded'>, 1, {'width': 640})
        """
        return Job.from_dict(self._request("GET", f"/v1/jobs/{job_id}").json())

    def wait(self, job_id: str, timeout: float) -> Job:
        """The job once it ends (long-polls).  Raises :class:`~zkq.coordinator.errors.WaitTimeout`
        (a ``TimeoutError``, the record as it stood in its ``.job``) if it has not ended within
        ``timeout`` seconds, so a pending or running record is never mistaken for the final one.

        >>> done = client.wait(job.id, timeout=60)
        >>> done.state, done.result
        (<JobState.SUCCEEDED: 'succeeded'>, {'width': 640})
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            wait = min(remaining, LONG_POLL)
            response = self._request(
                "GET",
                f"/v1/jobs/{job_id}",
                params={"wait": f"{wait:.3f}"},
                timeout=wait + self.timeout,
            )
            job = Job.from_dict(response.json())
            if job.terminal:
                return job
            if time.monotonic() >= deadline:
                raise WaitTimeout.waited(job, timeout)

    def cancel(self, job_id: str) -> Job:
        """Cancel a pending, assigned or running job; returns its record, ``cancelled``.
        One that has ended raises :class:`zkq.InvalidTransition` (a :class:`zkq.Conflict`).

        >>> client.cancel(job.id).state
        <JobState.CANCELLED: 'cancelled'>
        """
        try:
            return Job.from_dict(self._request("DELETE", f"/v1/jobs/{job_id}").json())
        except Conflict:
            # a retried cancel whose first attempt went through: the job is cancelled
            job = self.get(job_id)
            if str(job.state) == "cancelled":
                return job
            raise

    def list(
        self,
        state: str | None = None,
        type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        order: str | None = None,
        since: str | float | None = None,
        until: str | float | None = None,
        tenant: str | None = None,
    ) -> Page:
        """A page of the key's jobs, filtered by ``state`` and ``type``; an admin key sees
        every tenant's, or ``tenant``'s alone.  ``order``:
        ``"oldest"`` (the server's default) or ``"newest"`` first; ``since``/``until``:
        creation time, as ``"2h"`` (that long ago), an ISO-8601 time or Unix seconds.
        ``cursor``: the ``next_cursor`` of the page before; None on the last page.

        >>> page = client.list(state="dead", order="newest", since="1h", limit=20)
        >>> [job.id for job in page.jobs], page.next_cursor
        (['01JC8ZQ4W6T3M5X9B2N7R0K1HD'], None)
        """
        params: dict[str, Any] = {"limit": limit}
        for name, value in (
            ("state", state),
            ("type", type),
            ("cursor", cursor),
            ("order", order),
            ("since", since),
            ("until", until),
            ("tenant", tenant),
        ):
            if value is not None:
                params[name] = value
        body = self._request("GET", "/v1/jobs", params=params).json()
        return Page([Job.from_dict(j) for j in body["jobs"]], body.get("next_cursor"))

    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        """Every job (of the key's tenant) matching ``filters`` (those of :meth:`list`),
        page after page.

        >>> for job in client.iter_jobs(state="dead", type="resize"):
        ...     print(job.id, job.error["message"])
        01JC8ZQ4W6T3M5X9B2N7R0K1HD image not found
        """
        cursor: str | None = None
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def bulk_cancel(self, **filters: Any) -> dict[str, Any]:
        """Cancel every job the filters select (``type``, ``state``: a list of states,
        ``since``, ``until``; ``tenant`` for admin keys; ``dry_run=True`` only counts),
        following the server's cursor to the end; returns the summed ``matched``, ``done``,
        ``skipped`` (ended or changed meanwhile) and ``failed``.  Needs the submit scope.

        >>> counts = client.bulk_cancel(type="resize", state=["pending"])
        >>> counts["matched"], counts["done"], counts["skipped"]
        (120, 118, 2)
        """
        return self._bulk("cancel", filters)

    def bulk_requeue(self, **filters: Any) -> dict[str, Any]:
        """Requeue every job the filters select, as :meth:`bulk_cancel` (admin keys only).

        >>> client.bulk_requeue(type="resize", state=["dead", "failed"], since="1h")["done"]
        7
        """
        return self._bulk("requeue", filters)

    def _bulk(self, action: str, filters: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in filters.items() if v is not None}
        total: dict[str, Any] = {"matched": 0, "done": 0, "skipped": 0, "failed": 0, "errors": []}
        while True:
            # each step is bounded by the server; a retried step finds the jobs it already
            # did ended (skipped), so retries are safe
            step = self._request(
                "POST", f"/v1/jobs/bulk/{action}", json=body, timeout=max(self.timeout, 30.0)
            ).json()
            for name in ("matched", "done", "skipped", "failed"):
                total[name] += step[name]
            total["errors"].extend(step.get("errors", []))
            if not step.get("next_cursor"):
                return {"action": action, "dry_run": bool(body.get("dry_run")), **total}
            body["cursor"] = step["next_cursor"]

    # -- the cluster ------------------------------------------------------------------------
    def workers(self) -> builtins.list[dict[str, Any]]:
        """The live workers: id, host, slots, how many are busy, the types they serve.
        Needs a key with the ``admin`` scope.

        >>> [(w["id"], w["busy"], w["types"]) for w in client.workers()]
        [('host-4242-a1b2c3', 1, ['echo', 'resize'])]
        """
        return list(self._request("GET", "/v1/workers").json()["workers"])

    def queues(self) -> builtins.list[dict[str, Any]]:
        """Per job type: jobs pending, the oldest one's age, jobs running, whether paused.
        Needs a key with the ``admin`` scope.

        >>> [(q["type"], q["depth"], q["paused"]) for q in client.queues()]
        [('resize', 3, False)]
        """
        return list(self._request("GET", "/v1/queues").json()["queues"])


__all__ = ["CertificateRejected", "HttpClient", "Page"]

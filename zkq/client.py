"""A Python client of the REST API (through HAProxy), on ``requests``.

::

    from zkq.client import ZkqClient

    zkq = ZkqClient("http://127.0.0.1:8080", api_key="zkq_...", timeout=10)
    job = zkq.submit("resize", {"image": "a.png"}, priority=10)
    done = zkq.wait(job.id, timeout=60)
    print(done.state, done.result)

Retries: a connection that fails or a reply that never comes (a frontend killed, a proxy
restarting), and a 503, are retried with backoff.  That is safe for every call: reads and
cancels are idempotent, and each submission carries an ``Idempotency-Key`` made once per
*logical* submit, so the server returns the same job however many times the request
arrives.  Any other error is raised at once, typed by status and carrying the server's
error code::

    ApiError                      .status, .code, .message, .retry_after
    ├── BadRequest                400, 413, 415: fix the request
    ├── AuthError                 401, 403
    ├── NotFound                  404
    ├── ConflictError             409
    ├── RateLimited               429 (not retried: the caller decides how to slow down)
    └── ServiceUnavailable        503 after the retries, or no connection at all
"""

from __future__ import annotations

import builtins
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from zkq.coordinator.errors import ZkqError
from zkq.coordinator.job import Job

#: the server caps a long-poll at its MAX_WAIT (60 s by default); ask for less
LONG_POLL = 30.0


class ApiError(ZkqError):
    code = "api_error"

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class BadRequest(ApiError):
    pass


class AuthError(ApiError):
    pass


class NotFound(ApiError):
    pass


class ConflictError(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServiceUnavailable(ApiError):
    pass


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    413: BadRequest,
    415: BadRequest,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    409: ConflictError,
    429: RateLimited,
    503: ServiceUnavailable,
}


def _error(response: requests.Response) -> ApiError:
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", response.text[:200] or response.reason
    retry = response.headers.get("Retry-After")
    retry_after = float(retry) if retry and retry.isdigit() else None
    cls = _BY_STATUS.get(response.status_code, ApiError)
    return cls(response.status_code, code, message, retry_after)


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None


class ZkqClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: float = 0.2,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.http = session or requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ZkqClient:
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
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt > self.retries:
                    raise ServiceUnavailable(0, "unreachable", f"{method} {path}: {exc}") from exc
                self._pause(attempt, None)
                continue
            if response.status_code < 400:
                return response
            error = _error(response)
            if response.status_code == 503 and attempt <= self.retries:
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
    ) -> Job:
        body = {
            "type": job_type,
            "payload": payload,
            "priority": priority,
            "max_attempts": max_attempts,
            "timeout": timeout,
        }
        key = idempotency_key or str(uuid.uuid4())  # once per logical submit
        response = self._request("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key})
        return Job.from_dict(response.json())

    def submit_batch(
        self, jobs: Sequence[dict[str, Any]], idempotency_key: str | None = None
    ) -> builtins.list[Job]:
        """Each item: ``{"type": ..., "payload": ..., "priority": ..., ...}``; at most 1,000."""
        key = idempotency_key or str(uuid.uuid4())
        response = self._request(
            "POST", "/v1/jobs/batch", json={"jobs": list(jobs)}, headers={"Idempotency-Key": key}
        )
        return [Job.from_dict(j) for j in response.json()["jobs"]]

    def get(self, job_id: str) -> Job:
        return Job.from_dict(self._request("GET", f"/v1/jobs/{job_id}").json())

    def wait(self, job_id: str, timeout: float) -> Job:
        """The job once it ends, or as it stands after ``timeout`` seconds (long-polls)."""
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
            if job.terminal or time.monotonic() >= deadline:
                return job

    def cancel(self, job_id: str) -> Job:
        try:
            return Job.from_dict(self._request("DELETE", f"/v1/jobs/{job_id}").json())
        except ConflictError:
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
    ) -> Page:
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("state", state), ("type", type), ("cursor", cursor)):
            if value is not None:
                params[name] = value
        body = self._request("GET", "/v1/jobs", params=params).json()
        return Page([Job.from_dict(j) for j in body["jobs"]], body.get("next_cursor"))

    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        """Every job (of the key's tenant) matching ``filters``, page after page."""
        cursor: str | None = None
        while True:
            page = self.list(cursor=cursor, **filters)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- the cluster ------------------------------------------------------------------------
    def workers(self) -> builtins.list[dict[str, Any]]:
        return list(self._request("GET", "/v1/workers").json()["workers"])

    def queues(self) -> builtins.list[dict[str, Any]]:
        return list(self._request("GET", "/v1/queues").json()["queues"])


__all__ = [
    "ApiError",
    "AuthError",
    "BadRequest",
    "ConflictError",
    "NotFound",
    "Page",
    "RateLimited",
    "ServiceUnavailable",
    "ZkqClient",
]

"""The request bodies :class:`zkq.HttpClient` sends for a submission, checked here as the
server checks them, so a bad value fails before the round trip with the server's words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import check_retry
from zkq.coordinator.timestamps import epoch_seconds
from zkq.coordinator.validation import check_job_type, check_json

if TYPE_CHECKING:
    from zkq.coordinator.job import JobSpec


def checked(body: dict[str, Any]) -> dict[str, Any]:
    """The body, once its type and payload pass the checks the server makes
    (:mod:`zkq.coordinator.validation`): a payload JSON cannot carry (NaN, a lone surrogate)
    fails here with the server's message rather than in ``requests``' encoder."""
    check_job_type(body.get("type"))
    check_json(body.get("payload"))
    return body


def submission(job: JobSpec | dict[str, Any]) -> dict[str, Any]:
    """A batch item as the API takes it, from a body or from a ``JobSpec`` (``handle.spec``)."""
    if isinstance(job, dict):
        return checked(job)
    if job.job_id is not None:
        # the frontend makes the ids (an Idempotency-Key is how a retry finds its job)
        raise InvalidInput(f"job id {job.job_id} given: over HTTP the server chooses ids")
    return checked(
        {
            "type": job.type,
            "payload": job.payload,
            "priority": job.priority,
            "max_attempts": job.max_attempts,
            "timeout": job.timeout,
            **timing(job.run_at, job.delay, job.retry),
        }
    )


def timing(run_at: Any, delay: float | None, retry: Any) -> dict[str, Any]:
    """The body's ``run_at``/``delay``/``retry``, those given only, in the API's form: a
    ``delay`` is sent as it is, so the server's clock (not this machine's) dates it."""
    out: dict[str, Any] = {}
    if run_at is not None:
        out["run_at"] = epoch_seconds(run_at)
    if delay is not None:
        out["delay"] = delay
    if retry is not None:
        out["retry"] = check_retry(retry)
    return out

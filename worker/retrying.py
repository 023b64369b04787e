"""How long a failed attempt's retry waits, decided on the worker that saw it fail.

The delay is the job's retry policy (:mod:`zkq.coordinator.backoff`), but never less than
the floor the failure itself asked for: a handler's ``zkq.Retry(delay=…)``, else a
``Retry-After`` the exception carries (zkq's ``RateLimited``, a ``requests``/``httpx``
error).  The floor is read where the exception is caught (:func:`floor_of`, in the pool,
possibly a child process) and travels as a float on the :class:`~zkq.worker.pools.Outcome`,
so the exception itself never has to pickle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zkq.coordinator.backoff import retry_after_of, retry_delay
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import Job
from zkq.worker.control import Retry

if TYPE_CHECKING:
    from zkq.worker.pools import Outcome

#: the message of a job whose handler raised zkq.Retry on its last attempt
NO_ATTEMPTS_LEFT = "a retry was asked for with no attempts left"


def floor_of(exc: BaseException) -> float | None:
    """The least delay the failure ``exc`` asks for (None: whatever the policy says)."""
    if isinstance(exc, Retry):
        return exc.delay
    try:
        return retry_after_of(exc)
    except Exception:  # a hint the exception cannot give is no hint
        return None


def settle(job: Job, outcome: Outcome, error: dict[str, str]) -> tuple[dict[str, str], float]:
    """The error to record for the failed attempt of running ``job`` and the delay before
    its retry (0: at once, as without a policy).  A ``zkq.Retry`` on the last attempt says
    so in the error, so an operator does not look for a bug that is not there."""
    if job.attempts >= job.max_attempts:
        if outcome.retry:
            message = f"{NO_ATTEMPTS_LEFT} ({job.attempts} of {job.max_attempts})"
            reason = error.get("message")
            error = {**error, "message": f"{message}: {reason}" if reason else message}
        return error, 0.0
    try:
        return error, retry_delay(job.retry, job.attempt_number, outcome.retry_delay)
    except InvalidInput:
        # a policy this zkq cannot read (a newer one's): retry as before policies, at
        # once, rather than fail the committer that records every attempt's end
        return error, outcome.retry_delay or 0.0


__all__ = ["NO_ATTEMPTS_LEFT", "floor_of", "settle"]

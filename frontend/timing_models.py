"""The request fields that say when a job runs and how its retries wait: ``run_at``,
``delay`` and ``retry`` (a tagged union on ``backoff``).

The bounds are not repeated here: each value goes through the coordinator's own checks
(:mod:`zkq.coordinator.timestamps`, :mod:`zkq.coordinator.backoff`), so the API, the
clients and the records cannot disagree on what is allowed.  The models give the OpenAPI
document its shapes and keep the body strict (an unknown field is an error).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from zkq.coordinator.backoff import MAX_DELAY, Backoff
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import MAX_SCHEDULE_AHEAD
from zkq.coordinator.timestamps import epoch_seconds


def _run_at(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return epoch_seconds(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
    return value


#: epoch seconds, or RFC 3339 text with its offset (turned into epoch seconds)
RunAt = Annotated[
    float,
    BeforeValidator(_run_at),
    Field(ge=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "format": "date-time"},
            ],
            "description": "Not before this time: epoch seconds, or RFC 3339 with its "
            "offset (`2026-12-24T18:00:00Z`).  At most 366 days ahead.",
        }
    ),
]
DELAY = Field(
    None,
    ge=0,
    le=MAX_SCHEDULE_AHEAD,
    description="Not before this many seconds from now (the frontend's clock); not with `run_at`.",
)


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="after")
    def _bounds(self) -> _Policy:
        # the coordinator's bounds, the ones every other way in is held to
        try:
            Backoff.from_dict(self.model_dump())
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return self


# The bounds are stated here too, for the OpenAPI document (a generated client, or
# schemathesis, must be able to tell a valid policy); _Policy still runs backoff.py's
# checks, and tests/unit/test_timing_surfaces.py holds the two together.
Seconds = Annotated[float, Field(ge=0.001, le=MAX_DELAY)]
Jitter = Annotated[float, Field(ge=0.0, le=1.0)]


class ExponentialBackoff(_Policy):
    """`base`, `base*factor`, `base*factor²`, ... seconds, capped at `max`; the jitter
    only shortens a delay (by up to `jitter` of it)."""

    backoff: Literal["exponential"]
    base: Seconds = Field(1.0, description="The first wait, seconds.")
    factor: float = Field(2.0, ge=1.0, le=10.0, description="Each wait is this times the last.")
    max: Seconds = Field(300.0, description="The longest wait, seconds.")
    jitter: Jitter = Field(0.5, description="Shortens each wait by up to this share.")


class FixedBackoff(_Policy):
    """The same `delay` every time."""

    backoff: Literal["fixed"]
    delay: float = Field(ge=0.0, le=MAX_DELAY, description="The wait, seconds.")
    jitter: Jitter = Field(0.0, description="Shortens each wait by up to this share.")


class NoBackoff(_Policy):
    """Retry at once (as without a policy)."""

    backoff: Literal["none"]


RetryPolicy = Annotated[
    ExponentialBackoff | FixedBackoff | NoBackoff,
    Field(
        discriminator="backoff",
        description="How long a failed attempt waits before the next one; without it, "
        "the next one is at once.  A handler's `zkq.Retry(delay=)` or a `Retry-After` it "
        "saw can only lengthen the wait.",
    ),
]


def retry_dict(
    policy: ExponentialBackoff | FixedBackoff | NoBackoff | None,
) -> dict[str, Any] | None:
    """The policy as a record stores it."""
    return None if policy is None else Backoff.from_dict(policy.model_dump()).to_dict()


__all__ = [
    "DELAY",
    "ExponentialBackoff",
    "FixedBackoff",
    "NoBackoff",
    "RetryPolicy",
    "RunAt",
    "retry_dict",
]

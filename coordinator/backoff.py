"""Retry policies: how long a failed attempt waits before the next one.  Data and arithmetic
only, no I/O, so the same code decides on a worker (a handler's error), on the leader (an
attempt taken back at its lease) and in a test.

A policy is stored in the job record as a small dict (``retry``)::

    {"backoff": "exponential", "base": 1, "factor": 2, "max": 300, "jitter": 0.5}
    {"backoff": "fixed", "delay": 30}
    {"backoff": "none"}

Without one (``retry`` absent: every record written before policies existed, and the
default) a retry is immediate, as it always was.

The delay of attempt ``n``'s retry is ``max(policy.delay_for(n), floor)``, where the floor
is what the failure itself asked for: a handler's ``zkq.Retry(delay=…)``, or a
``Retry-After`` the failure carries (:func:`retry_after_of`).  Jitter only ever *shortens*
a delay (``d * (1 - jitter * U)``), so ``max`` is a real cap; the default 0.5 ("equal
jitter") spreads a fleet of jobs that failed together against one dependency.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

from zkq.coordinator.errors import InvalidInput

#: the longest any delay may be (and any policy figure): a week, as a job's timeout
MAX_DELAY = 7 * 24 * 3600.0
KINDS = ("exponential", "fixed", "none")


def _number(data: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"retry.{name} must be a number")
    if not low <= value <= high:
        raise InvalidInput(f"retry.{name} must be from {low:g} to {high:g}, not {value:g}")
    return float(value)


@dataclass(frozen=True)
class Backoff:
    """A retry policy (``zkq.Backoff``).

    ::

        zkq.Backoff()                        # exponential: 1, 2, 4, ... s, capped at 300 s
        zkq.Backoff(base=5, max=600)
        zkq.Backoff.fixed(30)                # 30 s every time
        zkq.Backoff.none()                   # at once (the default without a policy)
    """

    kind: Literal["exponential", "fixed", "none"] = "exponential"
    base: float = 1.0
    factor: float = 2.0
    max: float = 300.0
    jitter: float = 0.5
    delay: float = 0.0

    def __post_init__(self) -> None:
        # validated as a submission's policy is: a bad one fails where it is written
        _checked(self.to_dict())

    @classmethod
    def fixed(cls, delay: float, jitter: float = 0.0) -> Backoff:
        return cls(kind="fixed", delay=delay, jitter=jitter)

    @classmethod
    def none(cls) -> Backoff:
        return cls(kind="none")

    def delay_for(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number ``attempt`` (1 = the first) failed."""
        if self.kind == "none":
            return 0.0
        if self.kind == "fixed":
            full = self.delay
        else:
            # factor ** (attempt - 1) overflows a float near attempt 1000; the cap is reached
            # long before, so stop growing once past it
            exponent = max(0, attempt - 1)
            full = self.max
            if exponent < 1024 and self.base * self.factor**exponent < self.max:
                full = self.base * self.factor**exponent
            full = min(full, self.max)
        u = (rng or random).random()
        return max(0.0, full * (1.0 - self.jitter * u))

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "none":
            return {"backoff": "none"}
        if self.kind == "fixed":
            out: dict[str, Any] = {"backoff": "fixed", "delay": self.delay}
            if self.jitter:
                out["jitter"] = self.jitter
            return out
        return {
            "backoff": "exponential",
            "base": self.base,
            "factor": self.factor,
            "max": self.max,
            "jitter": self.jitter,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Backoff:
        """The policy a record or a submission holds; :class:`InvalidInput` says what is
        wrong with one that cannot be used."""
        if isinstance(data, Backoff):
            return data
        return cls(**_checked(data))


def _checked(data: Any) -> dict[str, Any]:
    """The fields of the policy ``data`` describes, checked."""
    if not isinstance(data, dict):
        raise InvalidInput('retry must be an object such as {"backoff": "fixed", "delay": 30}')
    kind = data.get("backoff", "exponential")
    if kind not in KINDS:
        raise InvalidInput(f"retry.backoff must be one of {', '.join(KINDS)}, not {kind!r}")
    allowed = {
        "none": {"backoff"},
        "fixed": {"backoff", "delay", "jitter"},
        "exponential": {"backoff", "base", "factor", "max", "jitter"},
    }[kind]
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(
            f"retry with backoff {kind!r} takes {', '.join(sorted(allowed))}; "
            f"not {', '.join(unknown)}"
        )
    if kind == "none":
        return {"kind": "none"}
    jitter = _number(data, "jitter", 0.0 if kind == "fixed" else 0.5, 0.0, 1.0)
    if kind == "fixed":
        return {
            "kind": "fixed",
            "delay": _number(data, "delay", 0.0, 0.0, MAX_DELAY),
            "jitter": jitter,
        }
    return {
        "kind": "exponential",
        "base": _number(data, "base", 1.0, 0.001, MAX_DELAY),
        "factor": _number(data, "factor", 2.0, 1.0, 10.0),
        "max": _number(data, "max", 300.0, 0.001, MAX_DELAY),
        "jitter": jitter,
    }


def retry_delay(
    policy: dict[str, Any] | None,
    attempt: int,
    floor: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds before the retry of attempt ``attempt``: the policy's delay (none: 0), but
    never less than ``floor`` (what the failure asked for), and never more than a week."""
    delay = Backoff.from_dict(policy).delay_for(attempt, rng) if policy else 0.0
    if floor is not None and floor > delay:
        delay = floor
    return min(max(0.0, delay), MAX_DELAY)


def parse_retry_after(value: Any, now: float | None = None) -> float | None:
    """An HTTP ``Retry-After`` value in seconds from now: delta-seconds or an HTTP-date
    (judged against ``now``, this machine's clock); None for anything else."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value)) if math.isfinite(value) else None
    text = str(value).strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_after_of(failure: object, now: float | None = None) -> float | None:
    """The ``Retry-After`` a failure carries, in seconds: its own ``retry_after`` attribute
    (zkq's ``RateLimited`` has one), else its ``.response.headers`` (``requests`` and
    ``httpx`` errors), else the object's own ``.headers`` (a response).  Duck-typed: no
    HTTP library is imported."""
    own = getattr(failure, "retry_after", None)
    if own is not None:
        return parse_retry_after(own, now)
    for holder in (getattr(failure, "response", None), failure):
        headers = getattr(holder, "headers", None)
        if headers is None:
            continue
        try:
            value = headers.get("Retry-After")
        except Exception:  # headers of an unexpected shape: no hint
            return None
        if value is not None:
            return parse_retry_after(value, now)
    return None


__all__ = [
    "MAX_DELAY",
    "Backoff",
    "parse_retry_after",
    "retry_after_of",
    "retry_delay",
]

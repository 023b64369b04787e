"""Moments as submitters give them (``run_at``, ``zkq submit --at``, ``zkq requeue --at``)
turned into the epoch seconds a record holds.

Accepted: epoch seconds (a number, or its text), an aware :class:`~datetime.datetime`,
or RFC 3339 text with its offset (``2026-12-24T18:00:00Z``, ``…+01:00``).  A moment
without a zone is refused rather than guessed: the submitter's zone and the cluster's
may differ, and a job run an hour off is a bug nobody sees until it bites.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from zkq.coordinator.errors import InvalidInput


def _hint(name: str) -> str:
    return (
        f"{name} must be epoch seconds or a time with its zone, "
        "as 2026-12-24T18:00:00Z or 2026-12-24T19:00:00+01:00"
    )


def epoch_seconds(value: Any, name: str = "run_at") -> float | None:
    """``value`` in epoch seconds (None stays None); :class:`InvalidInput` names ``name``
    and says what to give instead."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(
                f"{name} is a naive datetime: give it a zone, "
                "as datetime.now(timezone.utc) + timedelta(minutes=5)"
            )
        return value.timestamp()
    if isinstance(value, bool):
        raise InvalidInput(_hint(name))
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse(value.strip(), name)
    else:
        raise InvalidInput(_hint(name))
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(_hint(name))
    return seconds


def _parse(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    # RFC 3339 allows a lower-case z and a space for the T; fromisoformat wants +00:00
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(_hint(name)) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} {text!r} has no zone: {_hint(name)}")
    return moment.timestamp()


__all__ = ["epoch_seconds"]

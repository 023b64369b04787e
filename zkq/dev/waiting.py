"""Waiting on a condition with a deadline: the only way zkq's launcher and tests wait.

A bare ``time.sleep(n)`` is either too short on a loaded CI machine or wastes time on a fast
one; polling a condition until a deadline is both quick and robust, and its timeout message
says what never happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that value.

    Raises :class:`TimeoutError` naming ``what`` when ``timeout`` seconds pass first.
    Exceptions of the types in ``ignore`` count as "not yet" (e.g. ``ConnectionRefusedError``
    while a server starts); any other exception propagates at once, so a predicate can fail
    fast (e.g. when the process it waits for has died).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        # Never sleep past the deadline: the last check happens right at it.
        time.sleep(min(interval, remaining))

"""``zkq submit``'s options for when a job runs and how its retries wait: ``--delay``,
``--at`` and ``--backoff*``, declared here once and handed to the command as one
``timing`` dict of :meth:`zkq.Client.submit` keywords (``run_at``, ``delay``, ``retry``).

The values go through the coordinator's own checks (:mod:`zkq.coordinator.timestamps`,
:mod:`zkq.coordinator.backoff`); their messages are reworded to name the flag at fault.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from zkq.coordinator.backoff import KINDS
from zkq.coordinator.errors import InvalidInput
from zkq.coordinator.job import check_retry
from zkq.coordinator.timestamps import epoch_seconds

F = TypeVar("F", bound=Callable[..., Any])

#: the --backoff-NAME flags and the policy field each sets
FIELDS = ("base", "factor", "max", "jitter", "delay")


def parse_at(text: str | None, flag: str = "--at") -> float | None:
    """``--at``'s epoch seconds, or a usage error (exit 2) that says what to give."""
    try:
        return epoch_seconds(text, flag)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), param_hint=flag) from None


AT_HELP = (
    "Run it not before this time: RFC 3339 with its zone (2026-12-24T18:00:00Z) or epoch "
    "seconds.  The job waits 'scheduled' until then."
)


def retry_policy(kind: str | None, given: dict[str, float | None]) -> dict[str, Any] | None:
    """The policy the --backoff flags describe (None: no flag given: retries at once).
    Without --backoff, --backoff-delay means fixed and the others exponential."""
    values = {name: value for name, value in given.items() if value is not None}
    if kind is None and not values:
        return None
    if kind is None:
        kind = "fixed" if "delay" in values else "exponential"
    try:
        return check_retry({"backoff": kind, **values})
    except InvalidInput as exc:
        message = str(exc)
        for name in FIELDS:
            message = message.replace(f"retry.{name}", f"--backoff-{name}")
        if "takes" in message:  # a field the kind has no use for
            wrong = ", ".join(f"--backoff-{n}" for n in sorted(values))
            message = f"--backoff {kind} does not take all of {wrong}"
        raise click.UsageError(message) from None


def timing_options(fn: F) -> F:
    """Add the options to a command; it receives them as ``timing``."""

    @functools.wraps(fn)
    def command(
        *args: Any,
        delay: float | None,
        at: str | None,
        backoff: str | None,
        **kwargs: Any,
    ) -> Any:
        given = {name: kwargs.pop(f"backoff_{name}") for name in FIELDS}
        if delay is not None and at is not None:
            raise click.UsageError("give --delay or --at, not both")
        timing: dict[str, Any] = {}
        if delay is not None:
            timing["delay"] = delay
        if at is not None:
            timing["run_at"] = parse_at(at)
        retry = retry_policy(backoff, given)
        if retry is not None:
            timing["retry"] = retry
        return fn(*args, timing=timing, **kwargs)

    declared = [
        click.option(
            "--delay",
            type=click.FloatRange(min=0),
            help="Run it not before this many seconds from now; it waits 'scheduled'.",
        ),
        click.option("--at", metavar="WHEN", help=AT_HELP),
        click.option(
            "--backoff",
            type=click.Choice(KINDS),
            help="How long a failed attempt waits before the next (with --max-attempts > 1): "
            "exponential (base, base*factor, ... up to max), fixed (delay), none (at once, "
            "the default).",
        ),
        click.option("--backoff-base", type=float, help="exponential: first wait, s [1]."),
        click.option("--backoff-factor", type=float, help="exponential: growth, 1-10 [2]."),
        click.option("--backoff-max", type=float, help="exponential: longest wait, s [300]."),
        click.option(
            "--backoff-jitter",
            type=float,
            help="0-1: shortens each wait by up to this share of it, at random "
            "[exponential 0.5, fixed 0].",
        ),
        click.option("--backoff-delay", type=float, help="fixed: the wait, s."),
    ]
    for option in reversed(declared):
        command = option(command)
    return command  # type: ignore[return-value]


__all__ = ["AT_HELP", "parse_at", "retry_policy", "timing_options"]

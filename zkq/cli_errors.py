"""How the ``zkq`` command reports what went wrong: one line on stderr, ``zkq: ...``, and
an exit status that means something (:mod:`zkq.output` has the table).

click's own reports are three lines (usage, a hint, the error) and its interrupt is
``Aborted!`` with status 1.  :class:`ZkqGroup`, the class of the top-level group, turns
every error raised while parsing or running any command, subgroups included (``zkq dev``,
``zkq db``, ``zkq keys``, ...), into :class:`OneLineError` before click reports it, so one
place decides the format for all of them:

- a usage error (unknown option, missing argument, bad value, malformed job id):
  ``zkq: <message> (see 'zkq jobs --help')``, status 2;
- any other click error (``zkq dev``'s, a refused confirmation): ``zkq: <message>``, its
  own status (1);
- a zkq error a command let escape: 3 when the cluster is unreachable, else 1;
- Ctrl-C: ``zkq: interrupted``, status 130, as shells report SIGINT.

``zkq`` or a group given no command still prints its help: that is asking, not an error.
"""

from __future__ import annotations

from typing import Any

import click
from click.exceptions import NoArgsIsHelpError

from zkq.coordinator.errors import InvalidJobId, Unavailable, ZkqError
from zkq.coordinator.ids import validate_job_id
from zkq.output import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE, one_line

#: what a job id looks like, for the message about one that is not
EXAMPLE_JOB_ID = "01JC8ZQ4W6T3M5X9B2N7R0K1HD"


class OneLineError(click.ClickException):
    """An error click reports as ``zkq: <message>`` and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(one_line(message))
        # click declares exit_code on the class; main() reads it from the instance
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(f"zkq: {self.format_message()}", err=True)


def _sentence(message: str) -> str:
    """click's "No such option '--x'." as zkq writes its messages: lower case, no period."""
    message = message.strip().rstrip(".")
    first = message.split(" ", 1)[0]
    # "No", "Invalid", "Missing"; not a name such as "MySQL" or "JOB_ID"
    if first.isalpha() and first[0].isupper() and first[1:].islower():
        message = message[0].lower() + message[1:]
    return message


def _usage(exc: click.UsageError) -> OneLineError:
    message = _sentence(exc.format_message())
    if exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return OneLineError(message, EXIT_USAGE)


def _reported(exc: BaseException) -> BaseException:
    """The error to raise in place of ``exc``: ``exc`` itself when click reports it well."""
    if isinstance(exc, OneLineError | NoArgsIsHelpError):
        return exc
    if isinstance(exc, click.UsageError):
        return _usage(exc)
    if isinstance(exc, click.ClickException):
        return OneLineError(_sentence(exc.format_message()), exc.exit_code)
    if isinstance(exc, click.Abort):
        return OneLineError("aborted", EXIT_FAILED)
    if isinstance(exc, KeyboardInterrupt):
        return OneLineError("interrupted", EXIT_INTERRUPTED)
    if isinstance(exc, Unavailable):
        return OneLineError(str(exc), EXIT_UNAVAILABLE)
    if isinstance(exc, ZkqError):
        return OneLineError(str(exc), EXIT_FAILED)
    return exc


class ZkqGroup(click.Group):
    """The top-level group: every command's errors pass through here (see the module)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except (click.ClickException, click.Abort, KeyboardInterrupt) as exc:
            raise _reported(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.Abort, KeyboardInterrupt, ZkqError) as exc:
            reported = _reported(exc)
            if reported is exc:
                raise
            raise reported from exc


class JobIdType(click.ParamType):
    """A job id, checked before anything connects: a malformed one is a usage error (2),
    while a well-formed id the cluster does not know is the request's failure (1)."""

    name = "job_id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        # ULIDs are case-insensitive; zkq writes them in capitals
        text = str(value).strip().upper()
        try:
            return validate_job_id(text)
        except InvalidJobId:
            # a UsageError rather than self.fail(): the message names the value already,
            # without click's "Invalid value for 'JOB_ID':" before it
            raise click.UsageError(
                f"{value!r} is not a job id: one is 26 letters and digits like "
                f"{EXAMPLE_JOB_ID}, as `zkq submit` prints it",
                ctx,
            ) from None


#: ``@click.argument("job_id", type=JOB_ID)``
JOB_ID = JobIdType()

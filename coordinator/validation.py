"""What zkq accepts as a job type and as JSON: one definition for every entry point.

The HTTP API (:mod:`zkq.frontend.models`), the Python clients, the ``zkq`` command,
``ctx.spawn`` and a handler's result all end up here, so a value one of them accepts the
others accept too, and everything accepted can be stored in ZooKeeper, answered over HTTP
and archived in MySQL.  Python's :mod:`json` is more lenient than all three of those, so
"JSON" here is stricter than "what ``json.dumps`` writes".  Found by trying each against
the archive's MariaDB ``JSON`` column (``CHECK (JSON_VALID(record))``):

- ``NaN``, ``Infinity`` and ``-Infinity`` (``json.dumps`` writes them; they are not JSON,
  and ``json.loads("1e400")`` makes ``inf`` out of a valid number) are refused by the
  column, and an HTTP response could only turn them into ``null``;
- a lone surrogate (``"\\ud800"``) cannot be encoded as UTF-8, so no response can carry it,
  and the column refuses even its escaped form;
- nesting deeper than MariaDB's JSON limit of 32 levels is refused by the column; a
  payload sits one level inside its record, so it may nest :data:`MAX_DEPTH` levels;
- a job type goes into paths of ZooKeeper and the archive's ``ascii`` column of 64
  characters, so it is ASCII: letters, digits, ``-``, ``_`` and ``.``, not first.

Everything else JSON can say is fine, integers of any size included (up to Python's own
limit of 4,300 digits, which ``json`` enforces); NUL characters and astral characters
(emoji) store and archive unchanged.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from zkq.coordinator.errors import InvalidInput, PayloadTooLarge

JOB_TYPE_MAX = 64
#: a job type, as the HTTP API's schema declares it too
JOB_TYPE_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
#: how deep a payload or result may nest (``[]`` is 1): the record around it adds one level
#: and MariaDB's JSON column refuses more than 32
MAX_DEPTH = 30

_JOB_TYPE = re.compile(JOB_TYPE_PATTERN)


def check_job_type(job_type: Any) -> str:
    """The job type if zkq can take it; otherwise :class:`InvalidInput` saying what to do."""
    if not isinstance(job_type, str) or not 0 < len(job_type) <= JOB_TYPE_MAX:
        raise InvalidInput(f"type must be a non-empty string of at most {JOB_TYPE_MAX} characters")
    # fullmatch: "$" alone would let a trailing newline through
    if not _JOB_TYPE.fullmatch(job_type):
        raise InvalidInput(
            f"type {job_type!r} may hold only ASCII letters, digits, '-', '_' and '.' (not first)"
        )
    return job_type


#: where a value sits, innermost last, as a chain (label, parent): cheap to extend per item
Path = tuple[str | int, "Path"] | None


def _where(path: Path) -> str:
    labels: list[str] = []
    while path is not None:
        labels.append(f"[{path[0]!r}]")
        path = path[1]
    return "".join(reversed(labels))


def _check_string(text: str, what: str, path: Path) -> None:
    if text.isascii():
        return  # the common case, and no surrogate is ASCII
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what}{_where(path)} holds a lone surrogate (e.g. '\\ud800'), which is not "
            "text: send valid Unicode"
        ) from None


def as_text(text: str) -> str:
    """``text`` with any lone surrogate written as its escape (``\\udcff``): what zkq itself
    puts in a record (an exception's message, a traceback: a handler that decoded bytes with
    ``surrogateescape`` raises such text) must be JSON everything can keep, as a payload
    must."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_json(value: Any, what: str = "payload") -> None:
    """Raise :class:`InvalidInput` unless ``value`` is JSON every part of zkq can keep:
    dicts, lists (tuples), strings, finite numbers, booleans and None, nested at most
    :data:`MAX_DEPTH` levels.  ``what`` names the value in the message."""
    # iterative: a value nested ten thousand deep must get an answer, not a RecursionError
    stack: list[tuple[Any, int, Path]] = [(value, 0, None)]
    while stack:
        item, depth, path = stack.pop()
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(
                    f"{what}{_where(path)} is {item}, which JSON cannot hold: send a finite "
                    "number (or a string)"
                )
        elif isinstance(item, str):
            _check_string(item, what, path)
        elif isinstance(item, list | tuple | dict):
            if depth >= MAX_DEPTH:
                raise InvalidInput(
                    f"{what} nests deeper than {MAX_DEPTH} levels (at {what}{_where(path)}): "
                    "flatten it"
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InvalidInput(
                            f"{what}{_where(path)} has a key {key!r} that is not a string: "
                            "JSON object keys are strings"
                        )
                    _check_string(key, what, path)
                    stack.append((child, depth + 1, (key, path)))
            else:
                stack.extend((child, depth + 1, (n, path)) for n, child in enumerate(item))
        else:
            raise InvalidInput(
                f"{what}{_where(path)} is a {type(item).__name__}, which is not JSON: use "
                "dicts, lists, strings, numbers, booleans or None"
            )


def json_size(value: Any, what: str = "payload") -> int:
    """Bytes ``value`` takes in a record, once :func:`check_json` has passed it."""
    try:
        return len(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except (TypeError, ValueError) as exc:  # an int over Python's 4,300 digits, a cycle
        raise InvalidInput(f"{what} is not JSON zkq can store: {exc}") from None


def check_sized_json(value: Any, limit: int, what: str, hint: str) -> int:
    """:func:`check_json`, then the size limit; returns the size.  ``hint`` ends the
    message of a value over the limit."""
    check_json(value, what)
    size = json_size(value, what)
    if size > limit:
        raise PayloadTooLarge(f"{what} is {size} bytes, over the limit of {limit}: {hint}")
    return size


__all__ = [
    "JOB_TYPE_MAX",
    "JOB_TYPE_PATTERN",
    "MAX_DEPTH",
    "as_text",
    "check_job_type",
    "check_json",
    "check_sized_json",
    "json_size",
]

"""``Idempotency-Key``: the same submission sent twice, to any frontend, makes one job.

The key maps to the job ids chosen the first time, in MySQL (``idempotency_keys``, see
migration 0005), so every frontend sees the mapping.  The order of events is what makes
it safe:

1. claim the key with fresh ids (an INSERT; the primary key decides between two racing
   frontends, and the loser reads the winner's ids);
2. write the jobs to ZooKeeper with those ids.  Submission by id is idempotent
   (:meth:`JobStore.submit_many` returns a job that already exists with the same spec), so
   a retry after a crash between 1 and 2, or after a lost reply, settles on the same jobs.

A replay first looks the jobs up (ZooKeeper, then the archive, which the pruner writes
*before* it deletes from ZooKeeper), so a job that ran and was pruned long ago is not
submitted a second time.

**A submission without a key still has an identity.**  HAProxy re-sends a request whose
frontend closed the connection without answering (``retry-on empty-response``): the
frontend may have died after it committed the jobs.  So HAProxy gives every request a
unique id (``unique-id-format``) in :data:`REQUEST_ID`, the same on each re-send of that
request, and a submission that came without an ``Idempotency-Key`` uses it as an implicit
key (:func:`implicit_key`): the re-sent POST finds the first one's jobs instead of making
new ones.  This keeps HAProxy's retries (which save many requests when a frontend dies
before committing) without their one hazard.  A client that retries on its own must still
send its own key: only it knows that two requests are one.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from zkq.coordinator.errors import Conflict, IdempotencyKeyReused, MalformedRequest
from zkq.coordinator.mysql import ConnectionPool

HEADER = "Idempotency-Key"
#: set by HAProxy on every request (replacing any a client sent): one id per request, the
#: same on each of HAProxy's re-sends of it (haproxy/haproxy.cfg.j2)
REQUEST_ID = "X-Zkq-Request-Id"
#: an implicit key is this prefix and the request id, so it never meets a client's key
_IMPLICIT_PREFIX = "request-id:"
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
#: one claim in this many also deletes a batch of day-old keys
_PURGE_EVERY = 500


@dataclass(frozen=True)
class Claim:
    job_ids: list[str]
    replay: bool  # the key was seen before: these ids were chosen then


def check_key(value: str) -> str:
    if not _KEY_RE.match(value):
        raise MalformedRequest(
            f"{HEADER} must be 1 to 255 printable ASCII characters without spaces "
            "(a UUID is a good choice)"
        )
    return value


def implicit_key(request_id: str | None) -> str | None:
    """The key a submission without an ``Idempotency-Key`` is given: from HAProxy's
    request id, or None without one (a request sent to a frontend directly)."""
    if not request_id:
        return None
    key = _IMPLICIT_PREFIX + request_id
    return key if _KEY_RE.match(key) else None


#: submission fields that came later: left out of a request's hash while unset, so a key
#: used before they existed still matches the same request sent again after an upgrade
LATER_FIELDS = ("run_at", "delay", "retry")


def hashed(submission: BaseModel) -> dict[str, Any]:
    """What of one submission its request hash covers."""
    body = submission.model_dump()
    for name in LATER_FIELDS:
        if body.get(name) is None:
            body.pop(name, None)
    return body


def request_hash(endpoint: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{endpoint}\n{canonical}".encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def claim(self, tenant: str, key: str, digest: str, fresh_ids: list[str]) -> Claim:
        """The ids this key stands for: ``fresh_ids`` if it is new, else the first ones.

        Raises :class:`IdempotencyKeyReused` (409) when the key was used for a different
        request, and :class:`~zkq.coordinator.errors.DatabaseUnavailable` (503) without MySQL.
        """
        try:
            with self.pool.connection() as conn, conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO idempotency_keys (tenant, idem_key, request_hash, job_ids) "
                    "VALUES (%s, %s, %s, %s)",
                    (tenant, key, digest, ",".join(fresh_ids)),
                )
                if random.randrange(_PURGE_EVERY) == 0:
                    cur.execute(
                        "DELETE FROM idempotency_keys "
                        "WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL 1 DAY LIMIT 1000"
                    )
            return Claim(fresh_ids, replay=False)
        except Conflict:
            pass  # the key exists (a duplicate primary key): this is a retry, or a reuse
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT request_hash, job_ids FROM idempotency_keys "
                "WHERE tenant = %s AND idem_key = %s",
                (tenant, key),
            )
            row = cur.fetchone()
        if row is None:  # purged between the two statements: a day-old key, start afresh
            return self.claim(tenant, key, digest, fresh_ids)
        stored_hash, stored_ids = row
        if stored_hash != digest:
            raise IdempotencyKeyReused(
                f"{HEADER} {key!r} was used for a different request: use a new key for "
                "a new submission"
            )
        return Claim(str(stored_ids).split(","), replay=True)

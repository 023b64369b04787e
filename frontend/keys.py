"""API keys in MySQL (``api_keys``): create, authenticate, list, revoke.

A secret looks like ``zkq_`` + 43 URL-safe characters (32 random bytes).  The database holds
only its SHA-256 and the first 8 characters after ``zkq_`` (the *prefix*, which operators
see and which finds the row); the secret itself is shown once, by :meth:`KeyStore.create`.
A fast hash is right here because the secret is random, not a password somebody chose.

Authentication fails *closed*: when MySQL cannot answer, :meth:`KeyStore.authenticate`
raises :class:`~zkq.coordinator.errors.DatabaseUnavailable` (a 503), never lets a request in.
Keys it has verified are remembered for ``cache_seconds`` (5 s by default) to spare one
round trip per request; a revocation therefore takes effect on every frontend within that
time (at once on the frontend that revoked).

Secrets it found *no* live key for are remembered too, for ``negative_seconds`` (5 s), so a
client retrying a wrong key in a loop costs one query per 5 s, not one per request.  Only
the secret's hash is remembered, never a prefix: a key created after its secret was
refused is the only one this can delay, and a secret cannot be presented before it exists
(it is random, and shown only when made), so in practice a new key works at once
everywhere; the bound is ``negative_seconds`` on other frontends and nothing on the one that
created it (:meth:`KeyStore.create` forgets the refusal).  Random wrong keys, each new, are
what the address limit (:class:`zkq.frontend.ratelimit.FailureLimiter`) is for.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zkq.coordinator.config import TENANT_MAX
from zkq.coordinator.errors import ApiKeyNotFound, InvalidInput
from zkq.coordinator.mysql import ConnectionPool

SECRET_PREFIX = "zkq_"
PREFIX_CHARS = 8
#: len(secrets.token_urlsafe(32))
TOKEN_CHARS = 43
SCOPES = ("submit", "read", "admin")
NAME_MAX = 200
CACHE_MAX = 10_000

_COLUMNS = "id, key_prefix, tenant, scopes, rate_limit_per_minute, name, created_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    tenant: str
    scopes: frozenset[str]
    #: ``None``: the frontend's default limit
    rate_limit_per_minute: int | None
    name: str
    created_at: datetime  # naive UTC, as stored
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def display_prefix(self) -> str:
        """How operators see the key: ``zkq_AbCdEfGh…``."""
        return f"{SECRET_PREFIX}{self.prefix}…"

    @property
    def scope_list(self) -> list[str]:
        """The scopes in their canonical order (submit, read, admin)."""
        return sorted(self.scopes, key=SCOPES.index)

    def allows(self, scope: str) -> bool:
        """``admin`` may do everything; other scopes only what they name."""
        return scope in self.scopes or "admin" in self.scopes

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "tenant": self.tenant,
            "scopes": self.scope_list,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "name": self.name,
            "created_at": self.created_at.isoformat() + "Z",
            "revoked_at": self.revoked_at.isoformat() + "Z" if self.revoked_at else None,
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _prefix_of(secret: str) -> str | None:
    """The lookup prefix of a well-formed secret; ``None`` for anything else."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) != len(SECRET_PREFIX) + TOKEN_CHARS:
        return None
    return secret[len(SECRET_PREFIX) : len(SECRET_PREFIX) + PREFIX_CHARS]


def parse_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """``"submit,read"`` or ``["submit", "read"]`` as a validated set."""
    items = scopes.split(",") if isinstance(scopes, str) else scopes
    found = frozenset(s.strip() for s in items if s.strip())
    unknown = found - set(SCOPES)
    if unknown or not found:
        raise InvalidInput(
            f"scopes must be a non-empty subset of {', '.join(SCOPES)}"
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
        )
    return found


def _row_to_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, prefix, tenant, scopes, limit, name, created, revoked = row
    # pymysql returns a SET column as a set of strings, or as "a,b" text on some servers
    scope_set = frozenset(scopes.split(",") if isinstance(scopes, str) else scopes or ())
    return ApiKey(
        int(key_id),
        str(prefix),
        str(tenant),
        frozenset(s for s in scope_set if s),
        None if limit is None else int(limit),
        str(name),
        created,
        revoked,
    )


class KeyStore:
    def __init__(
        self, pool: ConnectionPool, cache_seconds: float = 5.0, negative_seconds: float = 5.0
    ) -> None:
        self.pool = pool
        self.cache_seconds = cache_seconds
        self.negative_seconds = negative_seconds
        self._cache: dict[str, tuple[float, ApiKey]] = {}  # key_hash -> (expires, key)
        self._refused: dict[str, float] = {}  # key_hash -> expires
        self._cache_lock = threading.Lock()

    def create(
        self,
        tenant: str,
        scopes: str | Iterable[str],
        name: str = "",
        rate_limit: int | None = None,
        *,
        secret: str | None = None,
    ) -> tuple[int, str]:
        """Make a key; returns ``(key_id, secret)``.  The secret is not stored: show it once.
        ``secret``: one made before to register again (the local demo's, kept across a
        fresh database); by default a new one."""
        if not tenant or len(tenant) > TENANT_MAX:
            raise InvalidInput(f"tenant must be 1 to {TENANT_MAX} characters")
        if len(name) > NAME_MAX:
            raise InvalidInput(f"name must be at most {NAME_MAX} characters")
        if rate_limit is not None and not 0 <= rate_limit <= 2**31:
            raise InvalidInput("rate limit must be a number of requests per minute, 0 or more")
        wanted = parse_scopes(scopes)
        secret = secret or SECRET_PREFIX + secrets.token_urlsafe(32)
        prefix = _prefix_of(secret)
        if prefix is None:  # never for a new one: token_urlsafe(32) is TOKEN_CHARS long
            raise InvalidInput(f"not a key secret: {SECRET_PREFIX} and {TOKEN_CHARS} characters")
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO api_keys (key_prefix, key_hash, tenant, scopes, "
                "rate_limit_per_minute, name) VALUES (%s, %s, %s, %s, %s, %s)",
                (prefix, hash_secret(secret), tenant, ",".join(sorted(wanted)), rate_limit, name),
            )
            key_id = int(cur.lastrowid)
        with self._cache_lock:
            self._refused.pop(hash_secret(secret), None)
        return key_id, secret

    def authenticate(self, secret: str) -> ApiKey | None:
        """The live key this secret belongs to; ``None`` for an unknown or revoked one."""
        prefix = _prefix_of(secret)
        if prefix is None:
            return None  # malformed: no need to ask the database
        digest = hash_secret(secret)
        cached = self._cached(digest)
        if cached is not None:
            return cached
        if self._was_refused(digest):
            return None  # refused lately: not worth another query
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                f"SELECT {_COLUMNS}, key_hash FROM api_keys "
                "WHERE key_prefix = %s AND revoked_at IS NULL",
                (prefix,),
            )
            rows = cur.fetchall()
        for row in rows:
            if hmac.compare_digest(str(row[-1]), digest):
                key = _row_to_key(row[:-1])
                self._remember(digest, key)
                return key
        self._refuse(digest)
        return None

    def verified(self, secret: str) -> ApiKey | None:
        """The key of ``secret`` if this process verified it lately; no I/O."""
        return self._cached(hash_secret(secret)) if _prefix_of(secret) else None

    def get(self, key_id: int) -> ApiKey:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
            row = cur.fetchone()
        if row is None:
            raise ApiKeyNotFound(f"no API key with id {key_id}: see `zkq keys list`")
        return _row_to_key(row)

    def list(
        self, tenant: str | None = None, include_revoked: bool = True
    ) -> builtins.list[ApiKey]:
        sql = f"SELECT {_COLUMNS} FROM api_keys"
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if tenant is not None:
            where.append("tenant = %s")
            args.append(tenant)
        if not include_revoked:
            where.append("revoked_at IS NULL")
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(sql + " ORDER BY id", args)
            rows = cur.fetchall()
        return [_row_to_key(row) for row in rows]

    def revoke(self, key: int | str) -> ApiKey:
        """Revoke by id (``12``) or prefix (``AbCdEfGh``, ``zkq_AbCdEfGh…``).  Revoking a
        revoked key changes nothing and returns it."""
        key_id = self._resolve(key)
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP(6) "
                "WHERE id = %s AND revoked_at IS NULL",
                (key_id,),
            )
        with self._cache_lock:
            self._cache = {h: entry for h, entry in self._cache.items() if entry[1].id != key_id}
        return self.get(key_id)

    def _resolve(self, key: int | str) -> int:
        if isinstance(key, int) or key.isdigit():
            return int(key)
        prefix = key.removeprefix(SECRET_PREFIX).rstrip("…").rstrip(".")
        if len(prefix) != PREFIX_CHARS:
            raise InvalidInput(
                f"{key!r} is neither a key id nor a key prefix ({PREFIX_CHARS} characters)"
            )
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM api_keys WHERE key_prefix = %s", (prefix,))
            ids = [int(row[0]) for row in cur.fetchall()]
        if not ids:
            raise ApiKeyNotFound(f"no API key with prefix {prefix!r}: see `zkq keys list`")
        if len(ids) > 1:
            raise InvalidInput(
                f"prefix {prefix!r} matches keys {', '.join(map(str, ids))}: revoke by id"
            )
        return ids[0]

    # -- the short-lived cache of verified keys -------------------------------------------
    def _cached(self, digest: str) -> ApiKey | None:
        if self.cache_seconds <= 0:
            return None
        with self._cache_lock:
            entry = self._cache.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _was_refused(self, digest: str) -> bool:
        with self._cache_lock:
            expires = self._refused.get(digest)
        return expires is not None and expires >= time.monotonic()

    def _refuse(self, digest: str) -> None:
        if self.negative_seconds <= 0:
            return
        with self._cache_lock:
            if len(self._refused) >= CACHE_MAX:
                self._refused.clear()
            self._refused[digest] = time.monotonic() + self.negative_seconds

    def _remember(self, digest: str, key: ApiKey) -> None:
        if self.cache_seconds <= 0:
            return
        with self._cache_lock:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + self.cache_seconds, key)

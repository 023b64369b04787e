"""List cursors that say nothing and work for one tenant only.

A page of ``GET /v1/jobs`` stops at the last job id it *examined*, which may be another
tenant's (the scan reads every tenant's records and keeps the caller's).  Handed out as is,
the cursor would show one tenant when another submitted a job, and the job's id.  So the
position travels sealed: encrypted, and authenticated together with the tenant::

    cursor = base64url(version | nonce | id XOR stream(nonce) | tag)
    stream = HMAC-SHA256(enc_key, "stream" | nonce)        (a PRF in counter mode, one block)
    tag    = HMAC-SHA256(mac_key, version | tenant | 0 | nonce | ciphertext)[:16]

Encrypt-then-MAC with keys derived from one per-cluster secret (``cluster_secrets`` in
MySQL, made by the first frontend that needs it), built from the standard library's HMAC
because zkq has no AES at hand.  A random nonce makes two cursors for one position differ.
A cursor altered, sealed for another tenant or by another cluster fails the tag: 400.
An admin key's listing (of every tenant, or of one it names) is sealed for
:func:`admin_view`, a name no tenant can have.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading

from zkq.coordinator.config import TENANT_MAX
from zkq.coordinator.errors import InvalidJobId, MalformedRequest
from zkq.coordinator.ids import validate_job_id
from zkq.coordinator.mysql import ConnectionPool

VERSION = b"\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
#: the 26 characters of a job id
ID_BYTES = 26
CURSOR_BYTES = len(VERSION) + NONCE_BYTES + ID_BYTES + TAG_BYTES
SECRET_NAME = "cursor"


def admin_view(tenant: str | None) -> str:
    """Whom an admin listing's cursors are sealed for: the listing of ``tenant``'s jobs, or
    of every tenant's (None).  Longer than any tenant's name (``TENANT_MAX``), so no
    tenant's cursor opens an admin listing and no admin cursor opens a tenant's."""
    return "*" * (TENANT_MAX + 1) + f"admin:{tenant if tenant is not None else ''}"


class InvalidCursor(MalformedRequest):
    """Kept out of the error tree's table on purpose: over HTTP it is a plain
    ``malformed_request`` (400), which is what a client should do about it."""


INVALID = (
    "cursor is not one this API gave your key's tenant (altered, truncated, or another "
    "tenant's): pass next_cursor exactly as a previous page returned it, or list again "
    "from the start without a cursor"
)


class CursorSealer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("a cursor secret needs at least 16 bytes")
        self._enc = hmac.new(secret, b"zkq cursor encryption", hashlib.sha256).digest()
        self._mac = hmac.new(secret, b"zkq cursor authentication", hashlib.sha256).digest()

    def seal(self, tenant: str, after: str) -> str:
        """The cursor for "after job id ``after``", for ``tenant`` only."""
        plain = after.encode("ascii")
        if len(plain) != ID_BYTES:
            raise ValueError(f"not a job id: {after!r}")
        nonce = os.urandom(NONCE_BYTES)
        body = VERSION + nonce + _xor(plain, self._stream(nonce))
        return base64.urlsafe_b64encode(body + self._tag(tenant, body)).decode().rstrip("=")

    def open(self, tenant: str, cursor: str) -> str:
        """The job id ``cursor`` resumes after; :class:`InvalidCursor` (400) for any cursor
        not sealed here for ``tenant``."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor(INVALID) from exc
        if len(raw) != CURSOR_BYTES or raw[:1] != VERSION:
            raise InvalidCursor(INVALID)
        body, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(tenant, body)):
            raise InvalidCursor(INVALID)
        nonce, sealed = body[1 : 1 + NONCE_BYTES], body[1 + NONCE_BYTES :]
        try:
            return validate_job_id(_xor(sealed, self._stream(nonce)).decode("ascii"))
        except (UnicodeDecodeError, InvalidJobId) as exc:  # a tag forged: cannot happen
            raise InvalidCursor(INVALID) from exc

    def _stream(self, nonce: bytes) -> bytes:
        return hmac.new(self._enc, b"stream" + nonce, hashlib.sha256).digest()[:ID_BYTES]

    def _tag(self, tenant: str, body: bytes) -> bytes:
        message = VERSION + tenant.encode() + b"\0" + body
        return hmac.new(self._mac, message, hashlib.sha256).digest()[:TAG_BYTES]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


class ClusterSecrets:
    """Secrets shared by every frontend through MySQL (``cluster_secrets``), read once."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._known: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes:
        with self._lock:
            if name not in self._known:
                self._known[name] = self._load(name)
            return self._known[name]

    def _load(self, name: str) -> bytes:
        with self.pool.connection() as conn, conn.cursor() as cur:
            # the first frontend's value wins; the others' inserts are ignored
            cur.execute(
                "INSERT IGNORE INTO cluster_secrets (name, secret) VALUES (%s, %s)",
                (name, secrets.token_bytes(32)),
            )
            cur.execute("SELECT secret FROM cluster_secrets WHERE name = %s", (name,))
            row = cur.fetchone()
        assert row is not None  # inserted or already there
        return bytes(row[0])

    def cursors(self) -> CursorSealer:
        return CursorSealer(self.get(SECRET_NAME))

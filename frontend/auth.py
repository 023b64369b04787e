"""Who is asking, may they, and how often: the checks every ``/v1`` endpoint with a scope
runs before it reads the body.

Keys come as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.  Everything here
fails *closed*: when MySQL cannot say whether a key is valid (or whether it is over its
limit), the request gets a 503, never the benefit of the doubt.

Unauthenticated requests cost MySQL as little as can be: an address that has failed to
authenticate too often lately (``ZKQ_AUTH_FAILURES_PER_MINUTE``, per frontend process) gets
a 429 with ``Retry-After`` before any key is looked up, unless its key is one this process
verified lately; and a wrong key is remembered for a few seconds (:mod:`.keys`).  The
address is the TCP peer's, or what a trusted proxy put in X-Forwarded-For
(:mod:`.proxies`): a client cannot pick its own.

``ZKQ_AUTH=off`` (benchmarks only, never in service) skips all of it: no key is read, no
rate limit counted, no request logged, and every request acts as :data:`AUTH_OFF_KEY`, one
fixed tenant with every scope.  The app warns at start-up when it is set.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, g, request

from zkq.coordinator.errors import Forbidden, RateLimited, Unauthenticated
from zkq.frontend.cursors import admin_view
from zkq.frontend.keys import SCOPES, ApiKey
from zkq.frontend.resources import current as resources

BEARER = "bearer "
#: who every request is with ZKQ_AUTH=off; id 0 is no row of api_keys
AUTH_OFF_KEY = ApiKey(
    id=0,
    prefix="authoff",
    tenant="bench-no-auth",
    scopes=frozenset(SCOPES),
    rate_limit_per_minute=None,
    name="ZKQ_AUTH=off",
    created_at=datetime(1970, 1, 1),
)


def enabled() -> bool:
    """False when the app runs with ``ZKQ_AUTH=off``."""
    return bool(current_app.config["AUTH"] != "off")


def presented_secret() -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        if not header.lower().startswith(BEARER):
            raise Unauthenticated("use 'Authorization: Bearer <key>' (or the X-API-Key header)")
        return header[len(BEARER) :].strip()
    return request.headers.get("X-API-Key")


def authenticate() -> ApiKey:
    address = request.remote_addr or "unknown"
    try:
        secret = presented_secret()
        if not secret:
            raise Unauthenticated("an API key is required: 'Authorization: Bearer <key>'")
        keys = resources().mysql.keys
        key = keys.verified(secret)
        if key is not None:
            return key  # known good, at no cost: the address limit does not apply
        _check_address(address)
        key = keys.authenticate(secret)
        if key is None:
            raise Unauthenticated("unknown or revoked API key")
        return key
    except Unauthenticated:
        resources().auth_failures.failed(address)
        raise


def _check_address(address: str) -> None:
    retry_after = resources().auth_failures.retry_after(address)
    if retry_after is not None:
        raise RateLimited(
            f"too many requests with a missing or invalid API key from {address}; "
            f"check the key and retry in {retry_after}s",
            retry_after,
        )


def require(scope: str) -> ApiKey:
    """Authenticate, check ``scope``, count the request against the key's rate limit."""
    if not enabled():
        g.api_key = AUTH_OFF_KEY
        return AUTH_OFF_KEY
    key = authenticate()
    g.api_key = key
    if not key.allows(scope):
        raise Forbidden(f"this key may not do this: it needs the {scope!r} scope")
    verdict = resources().mysql.limiter.hit(key.id, key.rate_limit_per_minute)
    limit = key.rate_limit_per_minute
    g.rate_limit = (
        resources().default_rate_limit if limit is None else limit,
        verdict.remaining,
    )
    if not verdict.allowed:
        raise RateLimited(
            f"rate limit of {g.rate_limit[0]} requests a minute reached; retry in "
            f"{verdict.retry_after}s",
            verdict.retry_after,
        )
    return key


def current_key() -> ApiKey:
    key: ApiKey = g.api_key
    return key


def is_admin() -> bool:
    """Whether the caller reaches every tenant's jobs: an admin key does."""
    return "admin" in current_key().scopes


def tenant_view(wanted: str | None) -> tuple[str | None, str]:
    """Whose jobs a listing or a bulk action covers (None: every tenant's), and whom its
    cursors are sealed for: the key's tenant, or for an admin the view it asked for
    (:func:`~zkq.frontend.cursors.admin_view`).  Another tenant's, asked by a key that is
    not an admin's, is :class:`Forbidden`."""
    own = current_key().tenant
    if not is_admin():
        if wanted is not None and wanted != own:
            raise Forbidden("only an admin key reaches another tenant's jobs: leave out tenant")
        return own, own
    return wanted, admin_view(wanted)

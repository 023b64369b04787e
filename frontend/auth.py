"""Who is asking, may they, and how often: the checks every ``/v1`` endpoint with a scope
runs before it reads the body.

Keys come as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.  Everything here
fails *closed*: when MySQL cannot say whether a key is valid (or whether it is over its
limit), the request gets a 503, never the benefit of the doubt.
"""

from __future__ import annotations

from flask import g, request

from frontend.errors import Forbidden, RateLimited, Unauthenticated
from frontend.keys import ApiKey
from frontend.resources import current as resources

BEARER = "bearer "


def presented_secret() -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        if not header.lower().startswith(BEARER):
            raise Unauthenticated("use 'Authorization: Bearer <key>' (or the X-API-Key header)")
        return header[len(BEARER) :].strip()
    return request.headers.get("X-API-Key")


def authenticate() -> ApiKey:
    secret = presented_secret()
    if not secret:
        raise Unauthenticated("an API key is required: 'Authorization: Bearer <key>'")
    key = resources().mysql.keys.authenticate(secret)
    if key is None:
        raise Unauthenticated("unknown or revoked API key")
    return key


def require(scope: str) -> ApiKey:
    """Authenticate, check ``scope``, count the request against the key's rate limit."""
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

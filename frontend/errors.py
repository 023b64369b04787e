"""The ONE table that turns any error into an HTTP status, and the one error shape.

Every error class lives in zkq's one tree (:mod:`zkq.coordinator.errors`), frontend-only ones
included, so the HTTP client (:mod:`zkq.http_client`) raises the very class the frontend
raised, by the body's ``code``.  Statuses are chosen here and nowhere else::

    ZkqError
    ├── InvalidInput ............................ 400
    │   ├── MalformedRequest                      bad JSON, wrong type, unknown field
    │   ├── InvalidJobId                          not a ULID
    │   ├── UnsupportedMediaType ................ 415
    │   └── PayloadTooLarge ..................... 413
    │       └── BodyTooLarge                      over MAX_CONTENT_LENGTH
    ├── Unauthenticated ......................... 401  no key, or not a key we know
    ├── Forbidden ............................... 403  the key lacks the endpoint's scope
    ├── NotFound ................................ 404  no such route
    │   └── JobNotFound, ...                           (also: another tenant's job)
    ├── MethodNotAllowed ........................ 405
    ├── Conflict ................................ 409
    │   └── IdempotencyKeyReused                  same key, different request
    ├── RateLimited ............................. 429  + Retry-After
    └── Unavailable ............................. 503  + Retry-After (ZooKeeper, MySQL)
        ├── BadGateway .......................... 502  } answered by HAProxy itself
        └── GatewayTimeout ...................... 504  } (haproxy/haproxy.cfg.j2)

Anything else is our bug: 500 (``internal_error``), logged with its traceback, never the
client's fault.  Werkzeug's own HTTP errors (routing, body size) are translated here too,
so every answer has the one shape ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import logging
import math

from flask import Flask, Response, current_app, jsonify
from werkzeug import exceptions as http

from zkq.coordinator.errors import (
    BadGateway,
    BodyTooLarge,
    Conflict,
    Forbidden,
    GatewayTimeout,
    InternalError,
    InvalidInput,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    ZkqError,
)

log = logging.getLogger(__name__)


#: the one place statuses are chosen; the most specific class in an error's MRO wins
STATUS: dict[type[BaseException], int] = {
    InvalidInput: 400,
    PayloadTooLarge: 413,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    UnsupportedMediaType: 415,
    RateLimited: 429,
    Unavailable: 503,
    # HAProxy answers these itself; listed so that every class of the tree has its status
    BadGateway: 502,
    GatewayTimeout: 504,
}

#: the statuses any endpoint may answer, for the OpenAPI document
DOCUMENTED = {
    400: "Malformed JSON, a wrong type, an unknown field or a bad id",
    401: "No API key, or one we do not know",
    403: "The key lacks the scope this endpoint needs",
    404: "No such job (or not yours), or no such route",
    405: "Method not allowed on this route",
    409: "The request collides with the job's state, or an idempotency key was reused",
    413: "Payload or body over the limit",
    415: "The body is not JSON",
    429: "Rate limit reached; see Retry-After",
    503: "ZooKeeper or MySQL unavailable; see Retry-After",
}


def status_of(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _from_werkzeug(exc: http.HTTPException) -> ZkqError:
    """Werkzeug's HTTP errors as ours (routing and body-size checks happen in Werkzeug)."""
    if isinstance(exc, http.NotFound):
        return NotFound("no such route: see /v1/openapi.json")
    if isinstance(exc, http.MethodNotAllowed):
        allowed = sorted(exc.valid_methods or [])
        return MethodNotAllowed(f"method not allowed here; allowed: {', '.join(allowed)}", allowed)
    if isinstance(exc, http.RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return BodyTooLarge(f"request body over the limit of {limit} bytes")
    if isinstance(exc, http.UnsupportedMediaType):
        return UnsupportedMediaType("send the body as application/json")
    if isinstance(exc, http.BadRequest):
        return MalformedRequest(exc.description or "malformed request")
    error = ZkqError(exc.description or exc.name)
    error.code = exc.name.lower().replace(" ", "_")
    return error


def error_response(exc: BaseException) -> Response:
    """The one error shape, with the status of :data:`STATUS` and its headers."""
    if isinstance(exc, http.HTTPException) and not isinstance(exc, http.InternalServerError):
        translated: BaseException = _from_werkzeug(exc)
        status = status_of(translated) if status_of(translated) != 500 else exc.code or 500
    else:
        translated = exc
        status = status_of(exc)
    if status >= 500 and not isinstance(translated, Unavailable):
        log.error("unexpected error", exc_info=exc)
        code, message = InternalError.code, "internal error: it is logged; please report it"
    else:
        code = getattr(translated, "code", "error")
        message = str(translated) or code
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if isinstance(translated, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(translated.retry_after or 1)))
    elif isinstance(translated, Unavailable):
        response.headers["Retry-After"] = str(current_app.config["RETRY_AFTER"])
    elif isinstance(translated, MethodNotAllowed) and translated.allowed:
        response.headers["Allow"] = ", ".join(translated.allowed)
    return response


def init_app(app: Flask) -> None:
    # HTTPException first so Flask does not fall back to its HTML error pages
    app.register_error_handler(http.HTTPException, error_response)
    app.register_error_handler(Exception, error_response)

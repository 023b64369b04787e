"""The endpoint registry: each route is declared once, with the models that validate its
input and describe its output, the scope it needs and the errors it may answer.  The same
declaration wires the Flask view and writes its part of the OpenAPI document
(:mod:`zkq.frontend.openapi`), so the document is never out of date.

A view receives its path parameters (job ids already checked), ``query=`` and ``body=`` as
validated model instances, and returns ``(model, status)`` or ``(model, status, headers)``.
Authentication, the scope check and rate limiting run before the body is even read.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, Response, g, request
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError
from werkzeug.routing import BaseConverter

from zkq.coordinator.errors import MalformedRequest, UnsupportedMediaType
from zkq.coordinator.ids import validate_job_id
from zkq.coordinator.validation import MAX_DEPTH
from zkq.frontend import auth

View = Callable[..., Any]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Header:
    """A request header an endpoint reads (documented in OpenAPI)."""

    name: str
    description: str
    max_length: int = 255


@dataclass(frozen=True)
class Endpoint:
    path: str  # OpenAPI form: /v1/jobs/{job_id}
    method: str
    name: str  # operationId and Flask endpoint
    summary: str
    scope: str | None  # None: no API key needed
    ok: tuple[int, type[BaseModel]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    headers: tuple[Header, ...] = ()
    response_headers: dict[str, str] = field(default_factory=dict)
    #: other statuses answered with a model rather than the error shape (readyz's 503)
    also: dict[int, type[BaseModel]] = field(default_factory=dict)
    tag: str = "jobs"

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    @property
    def flask_rule(self) -> str:
        rule = self.path
        for name in self.path_params:
            rule = rule.replace("{" + name + "}", f"<job_id:{name}>")
        return rule


class JobIdSegment(BaseConverter):
    """Any path segment but the fixed names beside ids (``/v1/jobs/batch``), so that a
    bad id reaches the view and gets its 400, while ``batch`` only ever routes to the
    batch endpoint (and its 405 lists only the batch endpoint's methods)."""

    regex = r"(?!batch$)[^/]+"


class Api:
    def __init__(self) -> None:
        self.endpoints: list[tuple[Endpoint, View]] = []

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        scope: str | None,
        ok: tuple[int, type[BaseModel]],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        errors: Sequence[int] = (),
        headers: Sequence[Header] = (),
        response_headers: dict[str, str] | None = None,
        also: dict[int, type[BaseModel]] | None = None,
        tag: str = "jobs",
    ) -> Callable[[View], View]:
        def register(view: View) -> View:
            endpoint = Endpoint(
                path=path,
                method=method.upper(),
                name=view.__name__,
                summary=summary,
                scope=scope,
                ok=ok,
                body=body,
                query=query,
                errors=tuple(sorted(set(errors) | _implied_errors(scope, body, path))),
                headers=tuple(headers),
                response_headers=dict(response_headers or {}),
                also=dict(also or {}),
                tag=tag,
            )
            self.endpoints.append((endpoint, view))
            return view

        return register

    def init_app(self, app: Flask) -> None:
        app.url_map.converters["job_id"] = JobIdSegment
        for endpoint, view in self.endpoints:
            app.add_url_rule(
                endpoint.flask_rule,
                endpoint=endpoint.name,
                view_func=_wrap(endpoint, view),
                methods=[endpoint.method],
                # OPTIONS is not part of the API (no CORS): it gets a 405 like any other
                # method the route does not document
                provide_automatic_options=False,
            )


def _implied_errors(scope: str | None, body: type[BaseModel] | None, path: str) -> set[int]:
    out: set[int] = set()
    if scope is not None:
        out |= {401, 403, 429, 503}
    if body is not None:
        out |= {400, 413, 415}
    if "{" in path:
        out |= {400, 404}
    return out


def _wrap(endpoint: Endpoint, view: View) -> View:
    @functools.wraps(view)
    def handle(**path_args: str) -> Response:
        if endpoint.scope is not None:
            auth.require(endpoint.scope)
        for name, value in path_args.items():
            if name.endswith("job_id"):
                validate_job_id(value)
        kwargs: dict[str, Any] = dict(path_args)
        if endpoint.query is not None:
            kwargs["query"] = parse_query(endpoint.query)
        if endpoint.body is not None:
            # on g too: the metrics count the jobs of a batch (frontend.metrics)
            kwargs["body"] = g.body = parse_body(endpoint.body)
        result = view(**kwargs)
        model, status, *rest = result
        response = Response(render(model), status=status, mimetype="application/json")
        if rest:
            response.headers.update(rest[0])
        return response

    return handle


def render(model: BaseModel) -> str:
    """The model as JSON.  A record stored before zkq checked payloads as it does now
    (:mod:`zkq.coordinator.validation`) may hold what pydantic's encoder refuses, a lone
    surrogate (or turns into null, NaN): such a job must still be readable, and so must
    every list page that includes it.  The stdlib encoder writes surrogates as ``\\ud800``
    escapes, losing nothing; non-finite numbers become null, as pydantic writes them."""
    try:
        return model.model_dump_json()
    except PydanticSerializationError:
        return json.dumps(_finite(model.model_dump(mode="python")), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def describe(error: ValidationError) -> str:
    """A pydantic error as one line a person can act on."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # json.loads makes inf of 1e400, which no response or archive could hold again
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range: send at most about 1.8e308")
    return value


def parse_body(model: type[M]) -> M:
    if not request.is_json:
        raise UnsupportedMediaType(
            f"send the body as application/json, not {request.mimetype or 'nothing'}"
        )
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        data = json.loads(raw, parse_constant=_no_constants, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        # the parser recurses per level; what is nested this deep is no payload we keep
        raise MalformedRequest(
            f"the body nests too deeply: a payload may nest at most {MAX_DEPTH} levels"
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedRequest(describe(exc)) from None


def parse_query(model: type[M]) -> M:
    values: dict[str, str] = {}
    for key, items in request.args.lists():
        if len(items) > 1:
            raise MalformedRequest(f"query parameter {key!r} given {len(items)} times")
        values[key] = items[0]
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise MalformedRequest(describe(exc)) from None


#: the registry every route module adds to
api = Api()

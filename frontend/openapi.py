"""The OpenAPI 3.1 document, generated from the endpoint registry (:mod:`zkq.frontend.api`) and
the pydantic models that validate the requests, so it cannot drift from what the server
accepts.  Served at ``/v1/openapi.json``; built once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from zkq.coordinator.schedules import NAME_RE
from zkq.frontend.api import Endpoint, api
from zkq.frontend.errors import DOCUMENTED
from zkq.frontend.models import JOB_ID_PATTERN, ErrorBody

REF = "#/components/schemas/{model}"
PATH = "/v1/openapi.json"
RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 1},
}


def _job_links(pointer: str) -> dict[str, Any]:
    """What a client (and schemathesis' stateful phase) may do next with a job it made."""
    return {
        name: {
            "operationId": operation,
            "parameters": {"job_id": f"$response.body#{pointer}"},
            "description": description,
        }
        for name, operation, description in (
            ("GetJob", "get_job", "Read the job just submitted"),
            ("CancelJob", "cancel_job", "Cancel the job just submitted"),
        )
    }


#: OpenAPI links of each operation's success response, by operationId
LINKS: dict[str, dict[str, Any]] = {
    "submit_job": _job_links("/id"),
    "submit_batch": _job_links("/jobs/0/id"),
}


def _models(endpoints: list[Endpoint]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorBody, "serialization"): None
    }
    for e in endpoints:
        if e.body is not None:
            wanted[(e.body, "validation")] = None
        if e.query is not None:
            wanted[(e.query, "validation")] = None
        wanted[(e.ok[1], "serialization")] = None
        for model in e.also.values():
            wanted[(model, "serialization")] = None
    return list(wanted)


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without pydantic's ``null`` alternative (``X | None``):
    a query string has no null, only a parameter given or left out."""
    options = prop.get("anyOf")
    if not options:
        return prop
    rest = [o for o in options if o != {"type": "null"}]
    out = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
    if len(rest) == 1:
        out.update(rest[0])
    else:
        out["anyOf"] = rest
    if prop.get("default") is not None:
        out["default"] = prop["default"]
    return out


def _content(ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": ref}}


def _operation(
    e: Endpoint,
    refs: Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]],
    defs: dict[str, Any],
) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {
                "type": "string",
                # a job id, or a schedule's name
                "pattern": JOB_ID_PATTERN if name.endswith("job_id") else NAME_RE.pattern,
            },
        }
        for name in e.path_params
    ]
    if e.query is not None:
        schema = defs[refs[(e.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = _not_null(prop)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    for header in e.headers:
        params.append(
            {
                "name": header.name,
                "in": "header",
                "required": False,
                "description": header.description,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": header.max_length,
                    "pattern": "^[\\x21-\\x7e]+$",
                },
            }
        )
    status, model = e.ok
    ok: dict[str, Any] = {
        "description": e.summary,
        "content": _content(refs[(model, "serialization")]),
    }
    if e.name in LINKS:
        ok["links"] = LINKS[e.name]
    if e.response_headers:
        ok["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in e.response_headers.items()
        }
    responses: dict[str, Any] = {str(status): ok}
    for code, other in e.also.items():
        responses[str(code)] = {
            "description": other.__doc__ or other.__name__,
            "content": _content(refs[(other, "serialization")]),
        }
    for code in e.errors:
        if str(code) in responses:
            continue
        entry: dict[str, Any] = {
            "description": DOCUMENTED[code],
            "content": _content(refs[(ErrorBody, "serialization")]),
        }
        if code in (429, 503):
            entry["headers"] = {"Retry-After": RETRY_AFTER}
        responses[str(code)] = entry
    operation: dict[str, Any] = {
        "operationId": e.name,
        "summary": e.summary,
        "tags": [e.tag],
        "responses": responses,
        "security": [{"bearer": []}, {"apiKey": []}] if e.scope else [],
    }
    if e.scope:
        operation["description"] = f"Needs an API key with the `{e.scope}` scope."
    if params:
        operation["parameters"] = params
    if e.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _content(refs[(e.body, "validation")]),
        }
    return operation


@functools.cache
def document() -> dict[str, Any]:
    endpoints = [e for e, _ in api.endpoints]
    refs, top = models_json_schema(_models(endpoints), ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, refs, defs)
    paths[PATH] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "tags": ["health"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document",
                    "content": _content({"type": "object"}),
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "zkq",
            "version": "1",
            "description": (
                "Submit jobs to a zkq cluster and follow them.  Errors always have the "
                'shape {"error": {"code": ..., "message": ...}}.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def openapi_json() -> Response:
    return jsonify(document())


def init_app(app: Flask) -> None:
    app.add_url_rule(
        PATH,
        endpoint="openapi",
        view_func=openapi_json,
        methods=["GET"],
        provide_automatic_options=False,
    )

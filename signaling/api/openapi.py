"""The OpenAPI 3.1 document of the REST API, made from the endpoint declarations (`http.Api`):
paths, parameters, request and response schemas (msgspec's JSON Schema of the very types the
handlers decode and encode), the errors each may answer, and bearer authentication. Served at
`GET /api/openapi.json`; `tests/signaling/test_openapi.py` keeps it true."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

import msgspec

from signaling.api.http import Api, Endpoint

REF_TEMPLATE: Final = "#/components/schemas/{name}"
JSON: Final = "application/json"


class ErrorDetail(msgspec.Struct, frozen=True):
    #: One of the protocol's error codes (docs/protocol.md).
    code: str
    #: What went wrong, for a person; never a secret.
    message: str
    #: The offending request field, on 422.
    field: str | None = None


class ErrorReply(msgspec.Struct, frozen=True):
    """Every error answer: `{"error": {"code", "message"[, "field"]}}`."""

    error: ErrorDetail


def document(api: Api, *, title: str, version: str, description: str = "") -> dict[str, Any]:
    types: list[Any] = [ErrorReply]
    for endpoint in api.endpoints:
        for kind in (endpoint.request, endpoint.response):
            if kind is not None and kind not in types:
                types.append(kind)
    schemas, components = msgspec.json.schema_components(types, ref_template=REF_TEMPLATE)
    schema_of = dict(zip(map(_key, types), schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in api.endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, schema_of
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "the access token from POST /api/auth/login",
                }
            },
        },
    }


def _key(kind: Any) -> str:
    return repr(kind)


def _operation(endpoint: Endpoint, schema_of: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in endpoint.path_parameters
    ]
    for query in endpoint.query:
        parameter: dict[str, Any] = {
            "name": query.name,
            "in": "query",
            "required": False,
            "description": query.description,
            "schema": {"type": "string"},
        }
        if query.example is not None:
            parameter["example"] = query.example
        parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": schema_of[_key(endpoint.request)]}},
        }
    if endpoint.auth:
        operation["security"] = [{"bearer": []}]
    responses: dict[str, Any] = {}
    if endpoint.response is None:
        responses["204"] = {"description": "done (no content)"}
    else:
        responses[str(endpoint.status)] = {
            "description": HTTPStatus(endpoint.status).phrase,
            "content": {JSON: {"schema": schema_of[_key(endpoint.response)]}},
        }
    error_schema = {"$ref": REF_TEMPLATE.format(name="ErrorReply")}
    # any endpoint may meet a database outage (503) or a failure of the server's own (500)
    for status in sorted({*endpoint.errors, 500, 503}):
        described: dict[str, Any] = {
            "description": HTTPStatus(status).phrase,
            "content": {JSON: {"schema": error_schema}},
        }
        if status in (429, 503):
            described["headers"] = {
                "Retry-After": {
                    "description": "seconds until a new attempt may succeed",
                    "required": True,  # always sent (`http.error_response`)
                    "schema": {"type": "integer", "minimum": 1},
                }
            }
        responses[str(status)] = described
    operation["responses"] = responses
    return operation

"""The OpenAPI document is true: it names every API route the server answers and nothing else,
its references resolve, and what the server really answers fits the documented types (decoded
strictly with the very types the document is made from), errors included."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from signaling.api import openapi_document
from signaling.api.auth import LoginReply
from signaling.api.boards import TxLogReply
from signaling.api.http import API
from signaling.api.openapi import ErrorReply
from tests.signaling.test_app import EMAIL, PASSWORD, live  # noqa: F401 (fixture)

#: Routes that are not part of the public API (documented in docs/protocol.md instead).
UNDOCUMENTED = {"/api/openapi.json"}
#: Not for clients: the SFU's loopback counters and the signed requests between a node's
#: processes and between nodes (`signaling.nodelink`; there with workers or Redis).
INTERNAL = "/api/internal/"


def routed(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        public = path.startswith("/api/") and not path.startswith(INTERNAL)
        if public and path not in UNDOCUMENTED and route.method != "HEAD":
            found.add((route.method, path))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


async def test_the_document_names_every_api_route_and_nothing_else(
    live: tuple[web.Application, int],  # noqa: F811
) -> None:
    app, port = live
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/api/openapi.json") as reply,
    ):
        assert reply.status == 200
        served = await reply.json()
    assert served == msgspec.json.decode(msgspec.json.encode(openapi_document()))
    assert served["openapi"] == "3.1.0"
    assert documented(served) == routed(app)


def test_every_reference_resolves_and_every_operation_is_complete() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, f"unresolved {ref}"
    operation_ids = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            operation_ids.append(operation["operationId"])
            assert operation["summary"], (method, path)
            assert "500" in operation["responses"]
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}
            if "security" in operation:
                assert "401" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert {"400", "422"} <= set(operation["responses"]), (method, path)
    assert len(operation_ids) == len(set(operation_ids)) == len(API.endpoints)


async def test_answers_fit_the_documented_types(
    live: tuple[web.Application, int],  # noqa: F811
) -> None:
    _, port = live
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            base + "/api/auth/login", json={"email": EMAIL, "password": PASSWORD}
        ) as reply:
            assert reply.status == 200
            login = msgspec.json.decode(await reply.read(), type=LoginReply, strict=True)
        async with http.get(
            base + "/api/boards/0e8f5b8a-1b0c-4c3e-9d7e-2f1a3b4c5d6e/tx-log",
            headers={"Authorization": f"Bearer {login.token}"},
        ) as reply:
            assert reply.status == 404  # no such board
            msgspec.json.decode(await reply.read(), type=ErrorReply, strict=True)
        async with http.get(base + "/api/boards/x/tx-log") as reply:
            assert reply.status == 401
            msgspec.json.decode(await reply.read(), type=ErrorReply, strict=True)
    assert login.expires_in > 0 and login.callsign == "DL1APP"
    assert TxLogReply.__struct_fields__ == ("board_id", "sessions")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, None),
        (b'{"email": "\xed\xa0\x80", "password": "x"}', 400, None),  # invalid UTF-8
        (b'{"email": "a@b.c"}', 422, "password"),
        (b'{"email": 5, "password": "x"}', 422, "email"),
        (b'{"email": "a@b.c", "password": "x", "admin": true}', 422, "admin"),
        (b"[]", 422, None),
    ],
)
async def test_bad_bodies_are_refused_naming_the_field(
    live: tuple[web.Application, int],  # noqa: F811
    body: bytes,
    status: int,
    field: str | None,
) -> None:
    _, port = live
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/api/auth/login",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as reply,
    ):
        assert reply.status == status
        error = msgspec.json.decode(await reply.read(), type=ErrorReply, strict=True).error
    assert error.code == "bad_request"
    assert error.field == field
    if field is not None:
        assert field in error.message

"""No route answers 500 or a traceback: bad input of every kind, through every route."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.factories import Tenant


def platform_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) under /data/ in the OpenAPI document, path parameters filled by an unknown id."""
    found: list[tuple[str, str]] = []
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        if template.startswith("/data/"):
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
            found += [(method.upper(), path) for method in sorted(operations)]
    assert len(found) >= 20
    return found


def assert_adobe_error(response: Any, status: int | None = None) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text)
    assert response.status_code >= 400
    body = response.json()
    assert "Traceback" not in response.text
    if "error_code" in body:
        assert set(body) == {"error_code", "message"}
    elif "type" in body and body["type"] == "/placeholder/type/uri":
        assert body["title"] == "BadRequestError"
    elif "error-chain" in body:  # the Observability Insights API's own shape (digest 7.1)
        assert body["type"].startswith("http://ns.adobe.com/aep/errors/INSGHT-")
        assert body["status"] == response.status_code and body["report"]["tenantInfo"]
    else:
        assert {"type", "title", "status", "report", "errorMessage", "errorDetails"} <= set(body)
        assert body["status"] == response.status_code
        assert body["report"]["request-id"]
    if status is not None:
        assert response.status_code == status, response.text


def test_every_route_without_headers_is_403010(client: TestClient) -> None:
    for method, path in platform_routes(client):
        response = client.request(method, path)
        assert_adobe_error(response, 403)
        assert response.json() == {"error_code": "403010", "message": "Oauth token is missing."}


def test_every_route_with_an_unknown_id_or_bad_body(client: TestClient, tenant: Tenant) -> None:
    headers = tenant.headers(**{"If-Match": '"x"', "content-type": "application/json"})
    bodies: list[bytes] = [
        b"{not json",
        b"[1, 2",
        b"null",
        b'"a string"',
        b"12",
        b'{"name": 12, "connectionSpec": 7, "flowSpec": [], "auth": "x", "data": 1}',
        b"[" * 50_000 + b"]" * 50_000,
        b'{"name": "\xff\xfe"}',
        b"",
    ]
    for method, path in platform_routes(client):
        if method in ("GET", "DELETE"):
            response = client.request(method, path, headers=headers)
            if "{" not in path and response.status_code == 200:
                continue  # a list or a spec catalog: nothing to refuse
            assert_adobe_error(response)
            continue
        for body in bodies:
            assert_adobe_error(client.request(method, path, content=body, headers=headers))


def test_wrong_methods_are_405_in_the_same_shape(client: TestClient, tenant: Tenant) -> None:
    base = factories.BASE
    for method, path in [
        ("PUT", "/connections"),
        ("DELETE", "/connectionSpecs"),
        ("PATCH", "/flows"),
        ("POST", "/flowSpecs/x"),
    ]:
        response = client.request(method, base + path, headers=tenant.headers())
        assert_adobe_error(response, 405)


def test_unknown_routes_and_query_types(client: TestClient, tenant: Tenant) -> None:
    base = factories.BASE
    assert_adobe_error(client.get(base + "/nothing/here", headers=tenant.headers()), 404)
    for query in ("limit=abc", "limit=0", "limit=1001", "limit=-1"):
        response = client.get(f"{base}/flows?{query}", headers=tenant.headers())
        assert_adobe_error(response, 400)
        assert "limit" in response.json()["errorMessage"]


@pytest.mark.parametrize(
    ("collection", "body", "field"),
    [
        ("connections", {"name": ["x"], "connectionSpec": {"id": "x"}}, "name"),
        ("connections", {"name": "x", "connectionSpec": {"id": 5}}, "connectionSpec.id"),
        (
            "sourceConnections",
            {"name": "x", "data": {"format": 1}, "connectionSpec": {"id": "x"}},
            "data.format",
        ),
        (
            "flows",
            {
                "name": "x",
                "flowSpec": {"id": "x"},
                "sourceConnectionIds": "abc",
                "targetConnectionIds": ["a"],
            },
            "sourceConnectionIds",
        ),
        (
            "flows",
            {
                "name": "x",
                "flowSpec": {"id": "x"},
                "sourceConnectionIds": ["a", "a"],
                "targetConnectionIds": ["b"],
            },
            "sourceConnectionIds",
        ),
    ],
)
def test_wrong_types_name_the_field(
    client: TestClient, tenant: Tenant, collection: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"{factories.BASE}/{collection}", json=body, headers=tenant.headers())
    assert_adobe_error(response, 400)
    assert response.json()["report"]["field"] == field

"""Every header failure gives the gateway's documented body and status (digest 6.1), in check order."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import jwt
import pytest
from fastapi.testclient import TestClient

from flowservice.services.context import Services
from flowservice.services.tokens import TokenSigner
from tests.factories import BASE, Tenant

URL = f"{BASE}/connections"


def gateway(status: int, code: str, message: str) -> tuple[int, dict[str, str]]:
    return status, {"error_code": code, "message": message}


def answer(client: TestClient, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    response = client.get(URL, headers=headers)
    return response.status_code, response.json()


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


def test_missing_token_is_403010(client: TestClient, tenant: Tenant) -> None:
    assert answer(client, without(tenant.headers(), "Authorization")) == gateway(
        403, "403010", "Oauth token is missing."
    )


@pytest.mark.parametrize(
    "value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt", "token-without-scheme"]
)
def test_malformed_token_is_401013(client: TestClient, tenant: Tenant, value: str) -> None:
    headers = tenant.headers(Authorization=value)
    assert answer(client, headers) == gateway(401, "401013", "Oauth token is not valid")


def test_expired_token_is_401013(client: TestClient, services: Services, tenant: Tenant) -> None:
    now = services.clock.now_ms() // 1000
    expired = services.tokens.issue(tenant.client_id, tenant.org_id, now - 7200, ttl_s=3600)
    headers = tenant.headers(Authorization=f"Bearer {expired}")
    assert answer(client, headers) == gateway(401, "401013", "Oauth token is not valid")


def test_tampered_token_is_401013(client: TestClient, tenant: Tenant) -> None:
    header, payload, signature = tenant.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["org"] = "SOMEONE_ELSE@AdobeOrg"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    headers = tenant.headers(Authorization=f"Bearer {header}.{forged}.{signature}")
    assert answer(client, headers) == gateway(401, "401013", "Oauth token is not valid")


def test_token_signed_with_another_key_or_alg_none_is_401013(
    client: TestClient, services: Services, tenant: Tenant
) -> None:
    now = services.clock.now_ms() // 1000
    foreign = TokenSigner(b"another installation's secret").issue(tenant.client_id, tenant.org_id, now, 3600)
    unsigned = jwt.encode(
        {
            "iss": "flowservice",
            "sub": tenant.client_id,
            "client_id": tenant.client_id,
            "org": tenant.org_id,
            "type": "access_token",
            "iat": now,
            "exp": now + 3600,
        },
        key="",
        algorithm="none",
    )
    for token in (foreign, unsigned):
        assert answer(client, tenant.headers(Authorization=f"Bearer {token}")) == gateway(
            401, "401013", "Oauth token is not valid"
        )


def test_api_key_missing_is_403000_and_wrong_is_403003(client: TestClient, tenant: Tenant) -> None:
    assert answer(client, without(tenant.headers(), "x-api-key")) == gateway(
        403, "403000", "Api Key is required"
    )
    assert answer(client, tenant.headers(**{"x-api-key": "someone-else"})) == gateway(
        403, "403003", "Api Key is invalid"
    )


def test_org_missing_is_400003(client: TestClient, tenant: Tenant) -> None:
    assert answer(client, without(tenant.headers(), "x-gw-ims-org-id")) == gateway(
        400, "400003", "Missing header"
    )


def test_org_other_than_the_tokens_is_refused(client: TestClient, tenant: Tenant) -> None:
    status, body = answer(client, tenant.headers(**{"x-gw-ims-org-id": "OTHER@AdobeOrg"}))
    assert status == 401
    assert body["type"].endswith("FLOW-2000-401")
    assert "OTHER@AdobeOrg" in body["errorMessage"]


def test_unknown_sandbox_is_2100_404_and_absent_header_means_prod(client: TestClient, tenant: Tenant) -> None:
    status, body = answer(client, tenant.headers(**{"x-sandbox-name": "dev"}))
    assert status == 404
    assert body["type"] == "https://ns.adobe.com/aep/errors/FLOW-2100-404"
    assert body["errorMessage"] == "The sandbox with the name 'dev' could not be found."
    assert client.get(URL, headers=without(tenant.headers(), "x-sandbox-name")).status_code == 200


def test_check_order_reports_the_first_failure(client: TestClient, tenant: Tenant) -> None:
    headers = {"x-sandbox-name": "nope"}
    assert answer(client, headers)[1]["error_code"] == "403010"
    headers["Authorization"] = f"Bearer {tenant.token}"
    assert answer(client, headers)[1]["error_code"] == "403000"
    headers["x-api-key"] = tenant.client_id
    assert answer(client, headers)[1]["error_code"] == "400003"


def test_gateway_answers_before_body_parsing_and_routing(client: TestClient) -> None:
    malformed = client.post(URL, content=b"{not json", headers={"content-type": "application/json"})
    unknown_route = client.get(f"{BASE}/noSuchCollection")
    assert malformed.json()["error_code"] == unknown_route.json()["error_code"] == "403010"


def test_request_id_is_echoed_and_reported(client: TestClient, tenant: Tenant) -> None:
    response = client.get(
        f"{URL}/00000000-0000-0000-0000-000000000000", headers=tenant.headers(**{"x-request-id": "req-42"})
    )
    assert response.headers["x-request-id"] == "req-42"
    assert response.json()["report"]["request-id"] == "req-42"
    generated = client.get(URL, headers=tenant.headers())
    assert len(generated.headers["x-request-id"]) == 36


def test_bodies_must_be_json_but_bodiless_actions_need_no_content_type(
    client: TestClient, tenant: Tenant
) -> None:
    response = client.post(URL, content=b"name=x", headers=tenant.headers(**{"content-type": "text/plain"}))
    assert response.status_code == 400
    assert response.json() == {
        "type": "/placeholder/type/uri",
        "status": 400,
        "title": "BadRequestError",
        "detail": "A valid content-type must be specified",
    }
    action = client.post(
        f"{BASE}/flows/00000000-0000-0000-0000-000000000000/action?op=enable", headers=tenant.headers()
    )
    assert action.status_code == 404  # reached the route: no content-type complaint


def test_oversized_bodies_are_413(client: TestClient, services: Services, tenant: Tenant) -> None:
    limit = services.settings.max_body_bytes
    big = b'{"name": "' + b"x" * limit + b'"}'
    response = client.post(URL, content=big, headers=tenant.headers(**{"content-type": "application/json"}))
    assert response.status_code == 413
    assert response.json()["type"].endswith("-413")
    assert str(limit) in response.json()["errorMessage"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    streamed = client.post(
        URL, content=chunks(), headers=tenant.headers(**{"content-type": "application/json"})
    )
    assert streamed.status_code == 413

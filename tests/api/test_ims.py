"""`POST /ims/token/v3`: the client-credentials grant, in OAuth's own error shapes."""

from __future__ import annotations

import jwt
import pytest
from fastapi.testclient import TestClient

from flowservice.services import identity
from flowservice.services.context import Services
from tests.factories import BASE, Tenant, new_org_id

TOKEN = "/ims/token/v3"


def test_issues_a_bearer_token_bound_to_org_and_client(client: TestClient, services: Services) -> None:
    credential = identity.create_credentials(services.db, new_org_id())
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": credential.client_id,
            "client_secret": credential.client_secret,
            "scope": "openid,AdobeID,read_organizations",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == services.settings.token_ttl_seconds
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["client_id"], claims["org"]) == (credential.client_id, credential.org_id)
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert response.headers["cache-control"] == "no-store"


def test_query_parameters_work_like_form_fields(client: TestClient, services: Services) -> None:
    credential = identity.create_credentials(services.db, new_org_id())
    query = f"grant_type=client_credentials&client_id={credential.client_id}&client_secret={credential.client_secret}"
    assert client.post(f"{TOKEN}?{query}").status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({}, 400, "invalid_request"),
        ({"grant_type": "password", "client_id": "x", "client_secret": "y"}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "client_secret": "y"}, 400, "invalid_request"),
        ({"grant_type": "client_credentials", "client_id": "x"}, 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "client_id": "unknown", "client_secret": "y"},
            401,
            "invalid_client",
        ),
    ],
)
def test_refusals(client: TestClient, form: dict[str, str], status: int, error: str) -> None:
    response = client.post(TOKEN, data=form)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def test_wrong_secret_is_refused(client: TestClient, tenant: Tenant) -> None:
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": "p8e-wrong",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_revocation_stops_new_tokens_and_old_ones_on_the_next_request(
    client: TestClient, services: Services, tenant: Tenant
) -> None:
    assert client.get(f"{BASE}/flows", headers=tenant.headers()).status_code == 200
    assert identity.revoke_credentials(services.db, tenant.client_id)
    response = client.get(f"{BASE}/flows", headers=tenant.headers())
    assert (response.status_code, response.json()) == (
        401,
        {"error_code": "401013", "message": "Oauth token is not valid"},
    )
    again = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
        },
    )
    assert again.status_code == 401

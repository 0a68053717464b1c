"""The OpenAPI document real clients read at `/openapi.json`: every status an operation can answer.

FastAPI derives an operation's success body from its route but knows nothing of what answers
around the route: the gateway (`403`/`401`/`400` in its own `{"error_code", "message"}` shape, `413`
for big bodies, `400` for a body that is not JSON), the error table (`404`, `400` naming the field,
`412` for a stale If-Match, `500`), nor that our validation errors are Adobe's `400`s and never
FastAPI's `422`. Left alone, the document promised `422` and hid every status clients really get.

`install()` gives the app a document builder that adds those answers to each operation by the same
rules the gateway and the error table follow, and declares the credentials the gateway checks, so
a client (or schemathesis, `tests/api/test_fuzz.py`) reading the document knows every status and
body shape it can get. Success bodies are declared on the routes themselves with the models below
(as `responses=`, which documents without re-serialising what the route returns).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

PROTECTED_PREFIX = "/data/"
BODY_METHODS = frozenset({"post", "put", "patch"})
INSIGHTS_PATH = "/data/infrastructure/observability/insights/metrics"
TOKEN_PATH = "/ims/token/v3"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /ims/token/v3`.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The client id the token was issued to.",
    },
    "imsOrg": {
        "type": "apiKey",
        "in": "header",
        "name": "x-gw-ims-org-id",
        "description": "The org the token belongs to.",
    },
}
SANDBOX_HEADER: dict[str, Any] = {
    "name": "x-sandbox-name",
    "in": "header",
    "required": False,
    "description": "The sandbox of the org to act in; `prod` when absent. An unknown one is 404.",
    "schema": {"type": "string", "default": "prod"},
}


# -- error bodies -------------------------------------------------------------------------------


class ProblemReport(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    detailed_message: str = Field(alias="detailed-message")
    request_id: str = Field(alias="request-id", description="Also in the `x-request-id` header")
    field: str | None = Field(default=None, description="The field or parameter at fault, when one is")


class Problem(BaseModel):
    """The Flow Service error body (`FLOW-{code}-{status}` in `type`)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="https://ns.adobe.com/aep/errors/FLOW-{code}-{status}")
    title: str
    status: int
    report: ProblemReport
    errorMessage: str
    errorDetails: str


class GatewayRefusal(BaseModel):
    """Adobe's gateway body: the token, api key or org header was missing or wrong."""

    model_config = ConfigDict(extra="forbid")

    error_code: str = Field(
        description="403010 token missing, 401013 token invalid, 403000/403003 api key, 400003 org header"
    )
    message: str


class ContentTypeRefusal(BaseModel):
    """The gateway's answer to a body that is not declared as JSON."""

    model_config = ConfigDict(extra="forbid")

    type: str
    status: int
    title: str
    detail: str


class InsightsTenant(BaseModel):
    sandboxName: str | None
    sandboxId: str | None
    imsOrgId: str | None


class InsightsReport(BaseModel):
    tenantInfo: InsightsTenant
    additionalContext: Any = None


class InsightsChainLink(BaseModel):
    serviceId: str
    errorCode: str
    invokingServiceId: str
    unixTimeStampMs: int


class InsightsRefusal(BaseModel):
    """The Observability Insights error body (`INSGHT-1000-400`): the reason is in the title."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str
    title: str
    status: int
    report: InsightsReport
    error_chain: list[InsightsChainLink] = Field(alias="error-chain")


class OAuthError(BaseModel):
    """RFC 6749 §5.2, as IMS answers a refused grant."""

    model_config = ConfigDict(extra="forbid")

    error: str
    error_description: str


# -- success bodies (used by the routes' `responses=`) -------------------------------------------


class Written(BaseModel):
    """A created or changed resource: its id and its new etag (send it back as If-Match)."""

    id: str
    etag: str


class RunStarted(Written):
    """`POST /runs`: the spec answers `{id, etag}`, the docs `{"items": [{id, etag}]}`; both are sent."""

    items: list[Written]


class AlertRuleCreated(Written):
    webhookSecret: str = Field(description="Shown once: sign-checking secret of the rule's webhook")


class Items(BaseModel):
    """One resource: Adobe wraps a single get in `items`."""

    items: list[dict[str, Any]]


class ListPage(BaseModel):
    """A page of a list; `_links.next.href` is `/{collection}?continuationToken=…` while more remain."""

    model_config = ConfigDict(populate_by_name=True)

    items: list[dict[str, Any]]
    links: dict[str, Any] = Field(alias="_links")


class Count(BaseModel):
    """A list asked with `count=true`."""

    count: int


class Catalog(BaseModel):
    """Catalog objects keyed by their id, as Adobe's Catalog answers."""

    model_config = ConfigDict(extra="allow")


class SchemaList(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    results: list[dict[str, Any]]
    page: dict[str, Any] = Field(alias="_page")
    links: dict[str, Any] = Field(alias="_links")


class FileLinks(BaseModel):
    """Data Access listings: the files of a batch, each with a download link."""

    model_config = ConfigDict(populate_by_name=True)

    data: list[dict[str, Any]]
    page: dict[str, Any] = Field(alias="_page")


class ConnectionTest(BaseModel):
    result: bool
    message: str | None = None


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str
    expires_in: int = Field(description="Seconds the token stays valid")


class MetricsAnswer(BaseModel):
    metricResponses: list[dict[str, Any]]


def ok(
    model: type[BaseModel] | None = None, *, status: int = 200, description: str = "Success"
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's success: documented, not enforced on what the route returns."""
    entry: dict[str, Any] = {"description": description}
    if model is not None:
        entry["model"] = model
    return {status: entry}


def list_or_count() -> dict[int | str, dict[str, Any]]:
    """A list endpoint answers a page, or `{"count": N}` when asked with `count=true`."""
    schema = {"anyOf": [_ref(ListPage), _ref(Count)]}
    return {
        200: {
            "description": "A page of the list, or its count",
            "content": {"application/json": {"schema": schema}},
        }
    }


def files_or_download() -> dict[int | str, dict[str, Any]]:
    """A folder is listed as JSON; a file streams as Parquet, JSON lines or JSON by its name."""
    return {
        200: {
            "description": "A listing (JSON), or the file itself",
            "content": {
                "application/json": {"schema": {}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }


# -- the document -------------------------------------------------------------------------------

ERROR_MODELS: tuple[type[BaseModel], ...] = (
    Problem,
    GatewayRefusal,
    ContentTypeRefusal,
    InsightsRefusal,
    OAuthError,
    ListPage,
    Count,
)


def install(app: FastAPI) -> None:
    """Replace `app.openapi` with `build`, cached as FastAPI caches its own."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in ERROR_MODELS:
        _add_model(schemas, model)
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _complete(path, method, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _complete(path: str, method: str, operation: dict[str, Any]) -> None:
    """Add what answers around the route: the gateway before it, the error table after it."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # validation is Adobe's 400 naming the field (api/errors.py)
    parameters: list[dict[str, Any]] = operation.get("parameters", [])
    add = _adder(responses)
    if method in BODY_METHODS:
        add(413, "The body is larger than the server's limit", Problem)
    if path == TOKEN_PATH:
        add(400, "The grant is malformed or not client_credentials", OAuthError)
        add(401, "Unknown client id or secret", OAuthError)
        return
    if not path.startswith(PROTECTED_PREFIX):
        return
    operation["security"] = [{name: [] for name in SECURITY_SCHEMES}]
    operation["parameters"] = [*parameters, SANDBOX_HEADER]
    bad_request: list[type[BaseModel]] = [
        InsightsRefusal if path == INSIGHTS_PATH else Problem,
        GatewayRefusal,
    ]
    if method in BODY_METHODS:
        bad_request.append(ContentTypeRefusal)
    add(
        400, "The request is invalid (the report names the field), or the org header is missing", *bad_request
    )
    add(401, "The token is invalid or expired, or belongs to another org", GatewayRefusal, Problem)
    add(403, "The token or the api key is missing, or the api key is not the token's", GatewayRefusal)
    add(404, "No such resource in this org and sandbox, or no such sandbox", Problem)
    if any(p.get("in") == "header" and p.get("name", "").lower() == "if-match" for p in parameters):
        add(412, "If-Match is not the resource's current etag", Problem)
    add(
        429,
        "The client is over its request rate (when one is set); wait `Retry-After` seconds",
        GatewayRefusal,
    )
    add(500, "An unexpected failure; logged with the request id, never a traceback", Problem)


def _adder(responses: dict[str, Any]) -> Callable[..., None]:
    def add(status: int, description: str, *models: type[BaseModel]) -> None:
        refs = [_ref(m) for m in models]
        schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
        entry = responses.setdefault(str(status), {"description": description})
        entry.setdefault("content", {"application/json": {"schema": schema}})

    return add


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """A model and the models it nests, as OpenAPI components (pydantic names them `$defs`)."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    schemas.setdefault(model.__name__, schema)

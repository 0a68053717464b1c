"""A small synchronous client of the Flow Service API, as any outside program would use it.

It speaks only HTTP (no imports of the server's code), so the commands built on it work against
any deployment, and against Adobe's own API given its host. Every failure becomes an `ApiError`
with Adobe's code and message, which the commands print as one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import httpx

from flowservice.cli.config import Profile

BASE_PATH = "/data/foundation/flowservice"
TOKEN_PATH = "/ims/token/v3"
MAX_PAGE = 1000  # the API's largest page

Params = Sequence[tuple[str, str | int]]


class ApiError(Exception):
    """A refusal or failure, with the code to search for (`FLOW-1386-400`, `401013`, …)."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def error_of(response: httpx.Response) -> ApiError:
    """Adobe's three error shapes (Flow Service problem, gateway, IMS OAuth) as one kind of error."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("type"), str):
            code = body["type"].rstrip("/").rsplit("/", 1)[-1]
            report = body["report"] if isinstance(body.get("report"), dict) else {}
            message = body.get("errorMessage") or report.get("detailed-message") or body.get("title")
            return ApiError(code, _one_line(message), status)
        if "error_code" in body:
            return ApiError(str(body["error_code"]), _one_line(body.get("message")), status)
        if "error" in body:
            return ApiError(str(body["error"]), _one_line(body.get("error_description")), status)
    return ApiError(f"HTTP {status}", _one_line(response.text[:300] or response.reason_phrase), status)


def _one_line(message: Any) -> str:
    return " ".join(str(message or "no message").split())


class Client:
    """Bearer token, Adobe's four headers and paging; the token is renewed once if it expires."""

    def __init__(
        self, profile: Profile, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.profile = profile
        self._http = httpx.Client(base_url=profile.url.rstrip("/"), timeout=timeout, transport=transport)
        self._token: str | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def token(self) -> str:
        if self._token is None:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.profile.client_id,
                "client_secret": self.profile.client_secret,
            }
            body = self._json(self._send("POST", TOKEN_PATH, data=form))
            token = body.get("access_token")
            if not isinstance(token, str) or not token:
                raise ApiError("invalid_token_response", f"{TOKEN_PATH} answered no access_token")
            self._token = token
        return self._token

    def get(self, path: str, params: Params = ()) -> dict[str, Any]:
        return self._call("GET", path, params=list(params))

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, json=body)

    def item(self, collection: str, resource_id: str) -> dict[str, Any]:
        """One resource: the API wraps it as `{"items": [resource]}`."""
        items = self.get(f"/{collection}/{resource_id}").get("items") or []
        if not items or not isinstance(items[0], dict):
            raise ApiError("empty_answer", f"GET /{collection}/{resource_id} answered no item")
        item: dict[str, Any] = items[0]
        return item

    def pages(self, collection: str, params: Params = (), page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every item, page by page: the continuation token alone reproduces the query."""
        query: list[tuple[str, str | int]] = [*params, ("limit", min(max(page_size, 1), MAX_PAGE))]
        while True:
            body = self.get(f"/{collection}", query)
            yield from body.get("items") or []
            following = ((body.get("_links") or {}).get("next") or {}).get("href")
            token = httpx.URL(following).params.get("continuationToken") if following else None
            if not token:
                return
            query = [("continuationToken", token)]

    def collect(
        self, collection: str, params: Params = (), *, limit: int, page_size: int | None = None
    ) -> list[dict[str, Any]]:
        """The first `limit` items (pages of `page_size`, default the limit up to the API's maximum)."""
        found: list[dict[str, Any]] = []
        if limit <= 0:
            return found
        for item in self.pages(collection, params, page_size or min(limit, MAX_PAGE)):
            found.append(item)
            if len(found) >= limit:
                break
        return found

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, BASE_PATH + path, headers=self._headers(), **kwargs)
        if response.status_code == 401 and self._token is not None:
            self._token = None  # expired or revoked meanwhile: one fresh token, one more try
            response = self._send(method, BASE_PATH + path, headers=self._headers(), **kwargs)
        return self._json(response)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token()}",
            "x-api-key": self.profile.client_id,
            "x-gw-ims-org-id": self.profile.org_id,
            "x-sandbox-name": self.profile.sandbox,
        }

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                "unreachable", f"cannot reach {self.profile.url}: {exc or type(exc).__name__}"
            ) from None

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise error_of(response)
        try:
            body = response.json()
        except json.JSONDecodeError:
            raise ApiError(
                f"HTTP {response.status_code}", f"{response.request.url.path} answered something not JSON"
            ) from None
        if not isinstance(body, dict):
            raise ApiError(f"HTTP {response.status_code}", f"{response.request.url.path} answered no object")
        return body

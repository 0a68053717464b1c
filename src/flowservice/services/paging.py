"""Continuation tokens, in the form real clients parse (shared by the API and the UI's lists).

aepp rebuilds the next URL as `href.split("=")[1]`, so the href is exactly
`/{collection}?continuationToken=TOKEN` and TOKEN holds no `=` or `&` (base64url without padding,
a dot between payload and MAC). The token carries the whole query and the keyset position, so it
works alone; it is signed and bound to the tenant, collection and query, so it cannot be forged,
edited, or replayed in another tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowservice.domain.tenancy import Tenant
from flowservice.errors import InvalidRequest
from flowservice.services.crypto import derive_keys


@dataclass(frozen=True, slots=True)
class Position:
    """Where the next page starts: the query it belongs to and the last sort key already returned."""

    properties: list[str]
    orderby: list[str]
    limit: int
    after: list[Any]


class ContinuationTokens:
    """Issued under the current secret's key; read under it or a previous one (a rotation does not
    break a client paging through a list)."""

    def __init__(self, secret: bytes, previous: Sequence[bytes] = ()) -> None:
        self._keys = derive_keys(secret, previous, "flowservice/continuation-tokens")

    def issue(self, tenant: Tenant, collection: str, position: Position) -> str:
        payload = {
            "c": collection,
            "o": tenant.org_id,
            "t": tenant.sandbox_name,
            "p": position.properties,
            "s": position.orderby,
            "l": position.limit,
            "k": position.after,
        }
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return _b64(raw) + "." + _b64(self._mac(raw, self._keys[0]))

    def read(self, token: str, tenant: Tenant, collection: str) -> Position:
        invalid = InvalidRequest(
            "1000", "The continuationToken is not valid for this request.", field="continuationToken"
        )
        body, _, mac = token.partition(".")
        try:
            raw = _unb64(body)
            given = _unb64(mac)
            good = any(hmac.compare_digest(given, self._mac(raw, key)) for key in self._keys)
            payload = json.loads(raw) if good else None
        except (ValueError, UnicodeDecodeError):
            raise invalid from None
        if not isinstance(payload, dict):
            raise invalid
        if (payload.get("c"), payload.get("o"), payload.get("t")) != (
            collection,
            tenant.org_id,
            tenant.sandbox_name,
        ):
            raise invalid
        return Position(list(payload["p"]), list(payload["s"]), int(payload["l"]), list(payload["k"]))

    @staticmethod
    def _mac(raw: bytes, key: bytes) -> bytes:
        return hmac.new(key, raw, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

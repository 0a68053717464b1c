"""The UI's session: a signed, http-only cookie naming the credentials a person signed in with.

The cookie holds no secret. It carries client ids and their orgs, the org and sandbox being looked
at, and a random token that every form posts back (so another site cannot make a signed-in browser
act). It is an HS256 JWT under a key of its own, derived from the installation's secret, and it
expires. Each request still checks that the credential is live, so revoking a credential ends its
UI sessions at once, as it ends its API tokens.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jwt

from flowservice.services.crypto import derive_keys

COOKIE = "flowservice_session"
TTL_S = 12 * 3600
MAX_ORGS = 8  # credentials one session holds; the oldest is dropped beyond it


@dataclass(frozen=True, slots=True)
class SignedIn:
    client_id: str
    org_id: str


@dataclass(frozen=True, slots=True)
class Session:
    credentials: tuple[SignedIn, ...]
    current: int  # index into credentials
    sandbox: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def signed_in(self) -> SignedIn:
        return self.credentials[self.current]

    def with_credential(self, credential: SignedIn, sandbox: str) -> Session:
        """Signed in (again) with `credential`, now looking at its org in `sandbox`."""
        others = tuple(c for c in self.credentials if c.org_id != credential.org_id)
        kept = (*others, credential)[-MAX_ORGS:]
        return replace(self, credentials=kept, current=len(kept) - 1, sandbox=sandbox)

    def looking_at(self, org_id: str, sandbox: str) -> Session | None:
        """The session switched to another of its orgs; None if it has no credential there."""
        for index, credential in enumerate(self.credentials):
            if credential.org_id == org_id:
                return replace(self, current=index, sandbox=sandbox)
        return None

    def csrf_ok(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.csrf.encode())


def new_session(credential: SignedIn, sandbox: str) -> Session:
    return Session((credential,), 0, sandbox)


class SessionCodec:
    """Cookies signed with the current secret's key, read with it or a previous one: a key rotation
    keeps people signed in until their session expires or the previous key is dropped."""

    def __init__(self, secret: bytes, previous: Sequence[bytes] = ()) -> None:
        self._keys = derive_keys(secret, previous, "flowservice/ui-session")
        self._key = self._keys[0]

    def dump(self, session: Session, now_s: int) -> str:
        claims = {
            "creds": [[c.client_id, c.org_id] for c in session.credentials],
            "cur": session.current,
            "sb": session.sandbox,
            "x": session.csrf,
            "iat": now_s,
            "exp": now_s + TTL_S,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def load(self, cookie: str | None, now_s: int) -> Session | None:
        """The session, or None for anything not a live cookie of ours (absent, forged, expired)."""
        if not cookie:
            return None
        try:
            claims = self._decode(cookie)
            exp = int(claims["exp"])
            creds = tuple(SignedIn(str(c), str(o)) for c, o in claims["creds"])
            current = int(claims["cur"])
            sandbox, csrf = str(claims["sb"]), str(claims["x"])
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            return None
        if now_s >= exp or not creds or not 0 <= current < len(creds) or not csrf:
            return None
        return Session(creds, current, sandbox, csrf)

    def _decode(self, cookie: str) -> dict[str, Any]:
        for key in self._keys[:-1]:
            try:
                return self._decode_with(cookie, key)
            except jwt.InvalidSignatureError:
                continue  # signed before a key rotation, perhaps: try the previous key
        return self._decode_with(cookie, self._keys[-1])

    @staticmethod
    def _decode_with(cookie: str, key: bytes) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            cookie, key, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
        )
        return claims

"""Access tokens: JWTs signed with a key derived from the settings secret, bound to an org and a client.

Signed with the current secret's key; verified with it or a previous secret's key, so a key rotation
does not sign everyone out: tokens issued before it work until they expire (at most
`token_ttl_seconds`), or until the previous key is dropped from the settings.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import jwt

from flowservice.services.crypto import derive_keys

ISSUER = "flowservice"
ALGORITHM = "HS256"
ACCESS = "access_token"
SIGN_IN = "ui_signin"


class InvalidToken(Exception):
    """Any reason a bearer token is not accepted; the gateway answers all of them with 401013."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    client_id: str
    org_id: str
    expires_at: int


class TokenSigner:
    def __init__(self, secret: bytes, previous: Sequence[bytes] = ()) -> None:
        self._keys = derive_keys(secret, previous, "flowservice/access-tokens")
        self._key = self._keys[0]

    def issue(self, client_id: str, org_id: str, now_s: int, ttl_s: int, *, kind: str = ACCESS) -> str:
        """A token of `kind`: ACCESS for the API's Bearer tokens, SIGN_IN for the one-click link
        `serve --dev` prints (a link is not an access token, and an access token opens no UI)."""
        claims = {
            "iss": ISSUER,
            "sub": client_id,
            "client_id": client_id,
            "org": org_id,
            "type": kind,
            "iat": now_s,
            "exp": now_s + ttl_s,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str, now_s: int, *, kind: str = ACCESS) -> TokenClaims:
        """Check expiry against the service clock that issued the token, not the wall clock,
        so that one clock governs every time decision (and tests can move it)."""
        claims = self._decode(token)
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise InvalidToken("malformed exp/iat")
        if now_s >= exp:
            raise InvalidToken("expired")
        if iat > now_s + 60:
            raise InvalidToken("issued in the future")
        client_id, org_id = claims.get("client_id"), claims.get("org")
        if claims.get("type") != kind or not isinstance(client_id, str) or not isinstance(org_id, str):
            raise InvalidToken(f"not a {kind} token")
        return TokenClaims(client_id, org_id, exp)

    def _decode(self, token: str) -> dict[str, object]:
        """The claims of a token signed with the current key or a previous one."""
        for key in self._keys:
            try:
                claims: dict[str, object] = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],  # never trust the header's alg (no "none", no key confusion)
                    issuer=ISSUER,
                    options={
                        "require": ["exp", "iat", "sub", "iss"],
                        "verify_exp": False,
                        "verify_iat": False,
                    },
                )
                return claims
            except jwt.InvalidSignatureError:
                continue  # perhaps signed before a rotation: try the previous key
            except jwt.PyJWTError as exc:
                raise InvalidToken(str(exc)) from None
        raise InvalidToken("signature verification failed")

"""Keys derived from the one secret in settings: token signing and encryption of connection secrets.

Deriving a key per purpose (HKDF) means a token signature can never be replayed as a ciphertext
key or the other way round, while the user manages a single secret.

Rotation: settings hold the current secret and, while a rotation is under way, the previous ones
(`FLOWSERVICE_PREVIOUS_SECRET_KEYS`). Every purpose derives its key from each: the current key seals
and signs, every key opens and verifies. `flowservice secrets rotate` re-seals what the store holds
with the current key (`SecretBox.reseal`); tokens and UI sessions are not stored, so they stay valid
under the previous keys until they expire, and stop working once those keys are dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret)


def derive_keys(secret: bytes, previous: Sequence[bytes], purpose: str) -> tuple[bytes, ...]:
    """The purpose's key from the current secret first, then from each previous one (for verifying)."""
    return tuple(derive_key(key, purpose) for key in (secret, *previous))


class SecretBox:
    """Authenticated encryption (Fernet: AES-CBC + HMAC) of a connection's secret parameters.

    Sealed with the current key; opened with the current or any previous key (MultiFernet).
    """

    def __init__(self, secret: bytes, previous: Sequence[bytes] = ()) -> None:
        fernets = [
            Fernet(base64.urlsafe_b64encode(key))
            for key in derive_keys(secret, previous, "flowservice/connection-secrets")
        ]
        self._current = fernets[0]
        self._fernet = MultiFernet(fernets)

    def seal(self, values: dict[str, Any]) -> str:
        return self._current.encrypt(json.dumps(values, separators=(",", ":")).encode()).decode()

    def reseal(self, token: str) -> str | None:
        """`token` sealed again with the current key, or None when it already is (so a second rotation
        changes nothing). ValueError when no key opens it."""
        try:
            self._current.decrypt(token.encode())
            return None
        except InvalidToken:
            pass
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored secrets cannot be decrypted with the current or a previous key") from exc

    def open(self, token: str) -> dict[str, Any]:
        try:
            values = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("stored secrets cannot be decrypted with the current secret key") from exc
        if not isinstance(values, dict):
            raise ValueError("stored secrets are not an object")
        return values


def new_client_id() -> str:
    return secrets.token_hex(16)


def new_client_secret() -> str:
    return "p8e-" + secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    # Client secrets are 256 random bits, not passwords people choose: a fast hash cannot be
    # brute-forced, so a slow KDF (bcrypt, argon2) would only cost every token request.
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_client_secret(secret), stored_hash)

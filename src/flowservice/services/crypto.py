"""Keys derived from the one secret in settings: token signing and encryption of connection secrets.

Deriving a key per purpose (HKDF) means a token signature can never be replayed as a ciphertext
key or the other way round, while the user manages a single secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret)


class SecretBox:
    """Authenticated encryption (Fernet: AES-CBC + HMAC) of a connection's secret parameters."""

    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret, "flowservice/connection-secrets")))

    def seal(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(values, separators=(",", ":")).encode()).decode()

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

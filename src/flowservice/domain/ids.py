"""Identifiers in the shapes Adobe's services use: Catalog ids (24 hex), ULID batch ids, schema `$id`s."""

from __future__ import annotations

import hashlib
import secrets

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def catalog_id() -> str:
    """Datasets and other Catalog objects: 24 hex characters, like Mongo ObjectIds (`5ed18e0f4f90b719…`)."""
    return secrets.token_hex(12)


def mapping_set_id() -> str:
    return secrets.token_hex(16)


def schema_id(tenant: str) -> str:
    """`https://ns.adobe.com/{tenant}/schemas/{40 hex}`, the `$id` form of the Schema Registry."""
    return f"https://ns.adobe.com/{tenant}/schemas/{secrets.token_hex(20)}"


def batch_id_for_run(run_id: str, created_at_ms: int) -> str:
    """A ULID (`01ES3TRN69E9W2DZ770XCGYAH1`): time-ordered, and derived from the run, so every attempt
    of one run writes the same batch and a second commit of it is recognisable."""
    randomness = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:10], "big")
    return ulid(created_at_ms, randomness)


def ulid(timestamp_ms: int, randomness: int) -> str:
    value = (timestamp_ms & ((1 << 48) - 1)) << 80 | (randomness & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))

"""Etags in Adobe's Cosmos-DB shape, and the If-Match comparison clients rely on.

Adobe's etags look like `"6802064a-0000-0200-0000-6387c6b90000"`: a random prefix and the hex of
`updatedAt` in epoch seconds. The JSON value carries the quotes; clients send it back quoted,
unquoted or weak (`W/"…"`), and all three must match.
"""

from __future__ import annotations

import secrets


def new_etag(updated_at_ms: int) -> str:
    return f'"{secrets.token_hex(4)}-0000-0200-0000-{updated_at_ms // 1000:08x}0000"'


def normalize(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.replace('\\"', '"')
    return value.strip('"')


def matches(if_match: str, etag: str) -> bool:
    """True when any of the (comma-separated) If-Match values names the current etag, or is `*`."""
    current = normalize(etag)
    return any(v.strip() == "*" or normalize(v) == current for v in if_match.split(","))

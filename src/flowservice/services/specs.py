"""Listing the built-in catalog with the same grammar as the database-backed lists, evaluated in memory."""

from __future__ import annotations

from typing import Any

from flowservice.domain.query import ListQuery, Path, Sort, matches, numeric, resolve, scalar_text
from flowservice.services.context import Services
from flowservice.services.resources import Page

DEFAULT_ORDER = (Sort(Path.of("name"), False),)


def list_specs(services: Services, collection: str, query: ListQuery, after: list[Any] | None = None) -> Page:
    docs = [d for d in services.catalog.documents(collection) if matches(d, query.filters)]
    order = query.order or DEFAULT_ORDER
    keyed = sorted(((_key(d, order), d) for d in docs), key=lambda pair: pair[0])
    if after is not None:
        start = tuple(tuple(part) for part in after)
        keyed = [pair for pair in keyed if pair[0] > start]
    page = keyed[: query.limit]
    following = [list(part) for part in page[-1][0]] if len(keyed) > query.limit else None
    return Page([d for _, d in page], following)


def count_specs(services: Services, collection: str, query: ListQuery) -> int:
    return sum(1 for d in services.catalog.documents(collection) if matches(d, query.filters))


def _key(doc: dict[str, Any], order: tuple[Sort, ...]) -> tuple[tuple[Any, ...], ...]:
    """A total, JSON-friendly sort key: numbers before text before missing, descending by negation."""
    parts: list[tuple[Any, ...]] = []
    for sort in order:
        value = next(iter(resolve(doc, sort.path)), None)
        number, text = numeric(value), scalar_text(value)
        if number is not None and not isinstance(value, str):
            part: tuple[Any, ...] = (0, -number if sort.descending else number, "")
        elif text is not None:
            part = (1, 0, _inverted(text) if sort.descending else text)
        else:
            part = (2, 0, "")
        parts.append(part)
    parts.append((1, 0, str(doc.get("id", ""))))
    return tuple(parts)


def _inverted(text: str) -> str:
    """A string that sorts in the reverse order of `text` (for descending keys that stay JSON)."""
    return "".join(chr(0x10FFFF - ord(c)) for c in text) + "\U0010ffff"

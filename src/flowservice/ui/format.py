"""Numbers and times as people read them, with the exact value a hover away.

Every formatter returns markup `<span title="exact">short</span>`, so a page never shows a rounded
number that cannot be checked. The API's `-1` (not known) and absent values read as an em dash.
"""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import Markup

from flowservice.domain.humanize import count_text, duration_text, size_text, when_text

UNKNOWN = Markup('<span class="unknown" title="not known">—</span>')


def _span(text: str, title: str) -> Markup:
    return Markup('<span title="{}">{}</span>').format(title, text)  # format() escapes both


def _known(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def iso(ms: int) -> str:
    try:
        return (
            datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
    except (OverflowError, OSError, ValueError):
        return str(ms)


def ago_text(ms: int, now_ms: int) -> str:
    delta = now_ms - ms
    if delta < 0:
        return "in " + duration_text(-delta)
    if delta < 5_000:
        return "just now"
    if delta < 60_000:
        return f"{delta // 1000} s ago"
    return duration_text(delta - delta % 1000) + " ago"


def count(value: object, unit: str = "") -> Markup:
    known = _known(value)
    if known is None:
        return UNKNOWN
    exact = f"{known} {unit}".strip()
    return _span(count_text(known), exact)


def size(value: object) -> Markup:
    known = _known(value)
    if known is None:
        return UNKNOWN
    return _span(size_text(known), f"{known:,} bytes")


def duration(start: object, end: object) -> Markup:
    begun, ended = _known(start), _known(end)
    if begun is None or ended is None:
        return UNKNOWN
    return _span(duration_text(ended - begun), f"{ended - begun:,} ms")


def when(value: object) -> Markup:
    known = _known(value)
    if not known:
        return UNKNOWN
    return _span(when_text(known), f"{iso(known)} ({known} ms)")


def ago(value: object, now_ms: int) -> Markup:
    known = _known(value)
    if not known:
        return UNKNOWN
    return _span(ago_text(known, now_ms), f"{when_text(known)} ({known} ms)")

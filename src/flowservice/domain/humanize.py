"""Numbers and times as people read them, the same on the pages and in the terminal."""

from __future__ import annotations

from datetime import UTC, datetime

_SIZES = ("B", "KB", "MB", "GB", "TB", "PB")


def count_text(value: int) -> str:
    return f"{value:,}"


def size_text(value: int) -> str:
    """Decimal units as storage is sold and shown (1.2 GB = 1.2 × 10⁹ bytes)."""
    if value < 1000:
        return f"{value} B"
    amount = float(value)
    unit = 0
    while amount >= 1000 and unit < len(_SIZES) - 1:
        amount /= 1000
        unit += 1
    shown = f"{amount:.1f}" if amount < 100 else f"{amount:.0f}"
    return f"{shown} {_SIZES[unit]}"


def duration_text(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s" if sec else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def when_text(ms: int, *, zone: bool = True) -> str:
    """UTC, to the second; a time past year 9999 (a window's far end) as its number."""
    try:
        shown = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return f"{shown} UTC" if zone else shown

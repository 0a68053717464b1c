"""Charts drawn on the server as inline SVG: no chart library, no script, readable without JavaScript.

Two pictures: a dataflow's records ingested and failed per run with its failure rate, and a run's
activities as bars on a time axis. Every mark carries a `<title>` with the exact numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from flowservice.domain.humanize import count_text, duration_text, when_text
from flowservice.domain.runs import RunBrief

WIDTH, HEIGHT = 720, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 44, 12, 22


@dataclass(frozen=True, slots=True)
class Bar:
    """An activity on the timeline."""

    name: str
    status: str
    start: int
    end: int | None  # None while it runs


def _n(value: int | None) -> int:
    return value if value is not None and value > 0 else 0


def records_chart(runs: Sequence[RunBrief]) -> Markup:
    """Stacked bars per run (ingested, failed), oldest to newest, and the failure rate as a line."""
    if not runs:
        return Markup('<p class="muted">No runs yet.</p>')
    inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    top = max(max(_n(r.output_records) + _n(r.failed_records) for r in runs), 1)
    step = inner_w / len(runs)
    bar_w = min(max(step * 0.7, 1.0), 28.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-label="Records ingested and failed per run, with the failure rate">',
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP + inner_h}" x2="{PAD_LEFT + inner_w}" '
        f'y2="{PAD_TOP + inner_h}"/>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}" text-anchor="end">{count_text(top)}</text>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + inner_h}" text-anchor="end">0</text>',
        f'<text class="tick rate" x="{WIDTH - PAD_RIGHT + 6}" y="{PAD_TOP + 8}">100%</text>',
        f'<text class="tick rate" x="{WIDTH - PAD_RIGHT + 6}" y="{PAD_TOP + inner_h}">0%</text>',
    ]
    rate_points = []
    for i, run in enumerate(runs):
        good, bad = _n(run.output_records), _n(run.failed_records)
        x = PAD_LEFT + i * step + (step - bar_w) / 2
        good_h = inner_h * good / top
        bad_h = inner_h * bad / top
        base = PAD_TOP + inner_h
        total = good + bad
        rate = bad / total if total else 0.0
        when = when_text(run.started_at or run.created_at)
        title = (
            f"{when}: {count_text(good)} ingested, {count_text(bad)} failed "
            f"({rate:.1%} failed), run {run.status}"
        )
        parts.append(f'<g class="run {Markup.escape(run.status)}"><title>{Markup.escape(title)}</title>')
        parts.append(
            f'<rect class="ok" x="{x:.1f}" y="{base - good_h:.1f}" width="{bar_w:.1f}" height="{good_h:.1f}"/>'
        )
        parts.append(
            f'<rect class="bad" x="{x:.1f}" y="{base - good_h - bad_h:.1f}" width="{bar_w:.1f}" height="{bad_h:.1f}"/>'
        )
        parts.append("</g>")
        rate_points.append(f"{x + bar_w / 2:.1f},{base - inner_h * rate:.1f}")
    parts.append(f'<polyline class="rate" points="{" ".join(rate_points)}"/>')
    first, last = runs[0], runs[-1]
    parts.append(
        f'<text class="tick" x="{PAD_LEFT}" y="{HEIGHT - 4}">{when_text(first.started_at or first.created_at)}</text>'
    )
    parts.append(
        f'<text class="tick" x="{PAD_LEFT + inner_w}" y="{HEIGHT - 4}" text-anchor="end">'
        f"{when_text(last.started_at or last.created_at)}</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def timeline(bars: Sequence[Bar], now_ms: int) -> Markup:
    """The activities of a run as bars from their start to their end on one time axis."""
    started = [b for b in bars if b.start > 0]
    if not started:
        return Markup('<p class="muted">Not started yet.</p>')
    origin = min(b.start for b in started)
    finish = max((b.end if b.end is not None else now_ms) for b in started)
    span = max(finish - origin, 1)
    row_h, label_w = 26, 150
    inner_w = WIDTH - label_w - 16
    height = row_h * len(started) + 24
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Activity timeline">',
    ]
    for i, bar in enumerate(started):
        end = bar.end if bar.end is not None else now_ms
        x = label_w + inner_w * (bar.start - origin) / span
        w = max(inner_w * (end - bar.start) / span, 2.0)
        y = 4 + i * row_h
        took = duration_text(max(end - bar.start, 0))
        running = "" if bar.end is not None else " (running)"
        title = (
            f"{bar.name}: {when_text(bar.start)} → {when_text(end) if bar.end else 'now'}, {took}{running}"
        )
        parts.append(f'<g class="activity {Markup.escape(bar.status)}"><title>{Markup.escape(title)}</title>')
        parts.append(f'<text class="label" x="0" y="{y + 16}">{Markup.escape(bar.name)}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 8}" rx="3"/>')
        parts.append(f'<text class="took" x="{min(x + w + 4, WIDTH - 60):.1f}" y="{y + 14}">{took}</text>')
        parts.append("</g>")
    parts.append(f'<text class="tick" x="{label_w}" y="{height - 4}">{when_text(origin)}</text>')
    parts.append(
        f'<text class="tick" x="{WIDTH - 16}" y="{height - 4}" text-anchor="end">+{duration_text(span)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))

"""Numbers for people, exact values on hover; charts whose marks say what they show."""

from __future__ import annotations

import pytest

from flowservice.domain.humanize import duration_text, size_text
from flowservice.domain.runs import RunBrief
from flowservice.ui import charts
from flowservice.ui.format import ago_text, count, size, when


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (1_234_567, "1.2 MB"),
        (1_200_000_000, "1.2 GB"),
        (123_400_000_000, "123 GB"),
    ],
)
def test_sizes_in_decimal_units(value: int, shown: str) -> None:
    assert size_text(value) == shown


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (0, "0 ms"),
        (999, "999 ms"),
        (1500, "1.5 s"),
        (56_000, "56 s"),
        (61_000, "1 min 1 s"),
        (3_600_000, "1 h"),
        (90_061_000, "25 h 1 min"),
        (180_000_000, "2 d 2 h"),
    ],
)
def test_durations(ms: int, shown: str) -> None:
    assert duration_text(ms) == shown


def test_exact_values_on_hover_and_unknowns() -> None:
    assert count(26758, "records") == '<span title="26758 records">26,758</span>'
    assert size(1_234_567_890) == '<span title="1,234,567,890 bytes">1.2 GB</span>'
    for unknown in (-1, None, "7", True):
        assert "not known" in count(unknown) and "not known" in size(unknown)
    assert when(1_700_000_000_000) == (
        '<span title="2023-11-14T22:13:20.000Z (1700000000000 ms)">2023-11-14 22:13:20 UTC</span>'
    )
    assert ago_text(1000, 1000 + 3_000) == "just now"
    assert ago_text(1000, 1000 + 42_000) == "42 s ago"
    assert ago_text(1000, 1000 + 125_000) == "2 min 5 s ago"


def brief(i: int, good: int, bad: int, status: str = "success") -> RunBrief:
    t = 1_700_000_000_000 + i * 60_000
    return RunBrief(f"r{i}", "f", status, t, t, t + 1000, good + bad, good, bad, 1, 10, 5, None, None, None)


def test_the_records_chart_draws_every_run_with_its_numbers() -> None:
    svg = charts.records_chart([brief(0, 90, 10), brief(1, 100, 0), brief(2, 0, 0, "failed")])
    assert svg.count('<g class="run ') == 3
    assert "90 ingested, 10 failed (10.0% failed), run success" in svg
    assert "0 ingested, 0 failed (0.0% failed), run failed" in svg
    assert '<polyline class="rate" points="' in svg
    assert "<script" not in svg
    assert "No runs yet" in charts.records_chart([])


def test_the_timeline_puts_activities_on_one_axis() -> None:
    svg = charts.timeline(
        [
            charts.Bar("Copy Activity", "success", 1000, 3000),
            charts.Bar("Promotion Activity", "inProgress", 3000, None),
        ],
        now_ms=7000,
    )
    assert "Copy Activity" in svg and "2.0 s" in svg and "(running)" in svg and "+6.0 s" in svg
    assert charts.timeline([charts.Bar("<b>x</b>", "success", 1, 2)], 3).count("<b>") == 0  # names escaped

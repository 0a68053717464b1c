"""Tests of the monitoring pages; `run_cells` is what both the HTTP and the browser tests expect."""

from __future__ import annotations

from typing import Any

from flowservice.domain.humanize import count_text, size_text


def run_cells(run: dict[str, Any]) -> list[str]:
    """A runs-table row's numbers (records in, out, failed, files, bytes in, out) from the API's run."""
    metrics = run["metrics"]
    return [
        count_text(metrics["recordSummary"]["inputRecordCount"]),
        count_text(metrics["recordSummary"]["outputRecordCount"]),
        count_text(metrics["recordSummary"]["failedRecordCount"]),
        count_text(metrics["fileSummary"]["inputFileCount"]),
        size_text(metrics["sizeSummary"]["inputBytes"]),
        size_text(metrics["sizeSummary"]["outputBytes"]),
    ]

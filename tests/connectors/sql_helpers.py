"""Helpers of the database table sources' tests (test_postgres.py, test_mysql.py), kept once so the two
suites build connection strings, windows and expectations the same way."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from flowservice.connectors.base import TableSource

SECRET = "pw-that-must-not-leak-7f3a"  # a password that no message may echo

BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SECOND = 1000


def closed_port() -> int:
    """A loopback port that nothing listens on (it was free a moment ago), to be refused quickly."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def braced(values: Mapping[str, Any]) -> str:
    """A connection string with every value in braces, so test values may hold `;`, `=` or `}`."""
    return ";".join(f"{k}={{{str(v).replace('}', '}}')}}}" for k, v in values.items())


def rows(batches: Iterator[pa.RecordBatch]) -> list[dict[str, Any]]:
    return [row for batch in batches for row in batch.to_pylist()]


def ids(src: TableSource, table: str, delta: str, start_ms: int, end_ms: int) -> list[int]:
    """The ids of the rows an incremental read of the window (start_ms, end_ms] returns, in its order."""
    return [r["id"] for r in rows(src.read(table, delta_column=delta, window_ms=(start_ms, end_ms)))]

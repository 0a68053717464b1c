"""Fixtures of the connector tests: one S3-compatible server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3server import start_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    url, stop = start_s3_server()
    try:
        yield url
    finally:
        stop()

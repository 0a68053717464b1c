"""Reaching the real services of the machine: skip when absent, fail when CI requires them."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

PG_ADMIN_URL = os.environ.get("FLOWSERVICE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def required() -> bool:
    return os.environ.get("FLOWSERVICE_REQUIRE_SERVICES") == "1"


def unavailable(service: str, reason: str, *, absent: str = "is not reachable") -> NoReturn:
    """Skip the test (or fail it under FLOWSERVICE_REQUIRE_SERVICES=1) because `service` is absent."""
    message = f"{service} {absent}: {reason}"
    if required():
        pytest.fail(message + " (FLOWSERVICE_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)

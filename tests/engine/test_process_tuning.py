"""The process tuning a worker gets (workers/ready.py, flowservice/__init__.py), seen from a new process."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import gc, os, sys
import flowservice
from flowservice.workers import ready
before = gc.get_freeze_count()
ready.prepare_process()
frozen = gc.get_freeze_count()
ready.prepare_process()
pandas = "pandas" in sys.modules or "pandas" not in {m.name for m in __import__("pkgutil").iter_modules()}
print(os.environ.get("MIMALLOC_ALLOW_THP"), before, frozen > 1000, gc.get_freeze_count() == frozen, pandas)
"""


def _run(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def test_huge_pages_are_off_unless_chosen_and_startup_objects_frozen_once() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_ALLOW_THP"}
    assert _run(env) == ["0", "0", "True", "True", "True"]  # pandas (when installed) loaded beforehand
    assert _run({**env, "MIMALLOC_ALLOW_THP": "1"})[0] == "1"  # the operator's choice stands

"""What a process that executes runs does once, when it is ready to take them.

- pyarrow imports pandas, when it is installed, the first time a run builds an array from Python
  values (to check whether they are pandas objects): ~0.4 s, under the import lock, so that the first
  run's lanes all waited for it. It is done here instead, before any run is claimed.
- A worker holds about a million objects from its start (modules, the app, settings, SQLAlchemy's
  mappers) that live as long as it does. CPython's full collections walk all of them, again and again
  while a run allocates short-lived objects. Frozen once the process is ready, they are left out of
  every later collection; objects made afterwards are collected as usual.

Both were measured on the ingestion benchmark (BENCHMARKS.md).
"""

from __future__ import annotations

import gc
import threading

import pyarrow as pa

_done = threading.Event()
_lock = threading.Lock()


def prepare_process() -> None:
    """Once per process: objects frozen are never collected, so doing it again would keep whatever
    became garbage in between."""
    with _lock:
        if _done.is_set():
            return
        pa.array([0])  # pyarrow's lazy imports, now rather than in a run
        gc.collect()
        gc.freeze()
        _done.set()

"""The garbage collector and a worker's long-lived objects.

A process that serves or executes runs holds about a million objects from its start (modules, the
app, settings, SQLAlchemy's mappers) that live as long as it does. CPython's full collections walk
all of them, again and again while a run allocates its short-lived objects: on the ingestion
benchmark that was ~14% of a run's wall time (BENCHMARKS.md). Frozen once the process is ready, they
are left out of every later collection; objects made afterwards are collected as usual.
"""

from __future__ import annotations

import gc
import threading

_done = threading.Event()
_lock = threading.Lock()


def freeze_startup_objects() -> None:
    """Collect what is already garbage, then freeze the rest, once per process (objects frozen are
    never collected: doing it again would keep whatever became garbage in between)."""
    with _lock:
        if _done.is_set():
            return
        gc.collect()
        gc.freeze()
        _done.set()

"""The seam between "a run exists" and "someone executes it"."""

from __future__ import annotations

from typing import Protocol


class RunQueue(Protocol):
    """Executes the store's runnable runs; `notify` is a hint that one was just created."""

    def start(self) -> None: ...

    def notify(self, run_id: str) -> None: ...

    def stop(self, timeout: float) -> None:
        """Stop claiming; wait up to `timeout` seconds for runs in flight."""

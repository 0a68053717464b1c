"""`runs watch`: poll the runs API and notice every change of a run's state.

Each poll looks at the newest runs, at every run in flight, and at every run the watch still waits
for but found in neither list (it finished and newer runs pushed it out of the newest ones): that
one is read by id, so `--until-finished` never misses the end of a run it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowservice.cli.client import MAX_PAGE, Client, Params
from flowservice.cli.views import FINISHED, IN_FLIGHT

IN_FLIGHT_FILTER = "state==" + ",".join(sorted(IN_FLIGHT))  # commas are OR


@dataclass(frozen=True)
class Change:
    run: dict[str, Any]
    previous: str | None  # None: the first time this watch saw the run
    observed_at: int

    def event(self) -> dict[str, Any]:
        """One line of `--json` output: enough to follow a run without asking the API again."""
        return {
            "id": self.run.get("id"),
            "flowId": self.run.get("flowId"),
            "state": self.run.get("state"),
            "previousState": self.previous,
            "observedAt": self.observed_at,
            "metrics": self.run.get("metrics") or {},
        }


class Watch:
    def __init__(self, client: Client, flow_id: str | None, recent: int) -> None:
        self.client = client
        self.flow_id = flow_id
        self.recent = recent
        self.states: dict[str, str] = {}
        self.awaited: set[str] = set()  # every run seen in flight: --until-finished waits for them

    def poll(self, now_ms: int) -> tuple[list[dict[str, Any]], list[Change]]:
        """The runs to show (newest first) and the state changes since the previous poll."""
        runs = self._fetch()
        changes = []
        for run in runs:
            run_id, state = str(run.get("id")), str(run.get("state"))
            previous = self.states.get(run_id)
            if previous != state:
                changes.append(Change(run, previous, now_ms))
                self.states[run_id] = state
            if state in IN_FLIGHT:
                self.awaited.add(run_id)
        return runs, changes

    def finished(self) -> bool:
        return all(self.states.get(run_id) in FINISHED for run_id in self.awaited)

    def _fetch(self) -> list[dict[str, Any]]:
        scope: Params = [("property", f"flowId=={self.flow_id}")] if self.flow_id else []
        newest = self.client.collect("runs", [*scope, ("orderby", "-createdAt")], limit=self.recent)
        flying = self.client.collect(
            "runs", [*scope, ("property", IN_FLIGHT_FILTER)], limit=10 * MAX_PAGE, page_size=MAX_PAGE
        )
        runs = {str(r.get("id")): r for r in [*newest, *flying]}  # the later answer wins
        for run_id in sorted(self.awaited - runs.keys()):
            if self.states.get(run_id) not in FINISHED:
                runs[run_id] = self.client.item("runs", run_id)
        return sorted(
            runs.values(), key=lambda r: (int(r.get("createdAt") or 0), str(r.get("id"))), reverse=True
        )

"""What the monitoring pages show: dataflows with their recent runs, a dataflow's run history, a run
in full with its failed records and input files.

These are read models over the same store the API uses, shaped for people rather than for Adobe's
wire format; the writes a page offers (run now, retry, enable/disable) go through the same service
functions as the API's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flowservice.domain import schedule
from flowservice.domain.query import parse_list_query
from flowservice.domain.runs import RunBrief
from flowservice.domain.tenancy import Caller
from flowservice.errors import FlowServiceError, NotFound
from flowservice.services import export, runs
from flowservice.services.context import Services
from flowservice.store.repos import monitoring as monitoring_repo
from flowservice.store.repos import resources as repos

RUN_STATUSES = ("scheduled", "inProgress", "success", "failed", "cancelled")
FLOW_SORTS = {
    "-createdAt": "newest first",
    "+createdAt": "oldest first",
    "+name": "name A–Z",
    "-name": "name Z–A",
    "-updatedAt": "recently changed",
}
STRIP = 20  # runs in a dataflow's status strip
CHART = 60  # runs in a dataflow's chart
PREVIEW = 20  # failed records shown on a run's page


@dataclass(frozen=True, slots=True)
class FlowRow:
    id: str
    name: str
    state: str
    source_spec: str
    source_name: str
    dataset_id: str
    dataset_name: str
    schedule: str
    frequency: str
    strip: list[RunBrief]  # newest first
    doc: dict[str, Any] = field(repr=False)

    @property
    def last_run(self) -> RunBrief | None:
        return self.strip[0] if self.strip else None


@dataclass(frozen=True, slots=True)
class RunView:
    doc: dict[str, Any]
    flow_name: str
    batch_id: str | None
    failed_preview: list[dict[str, Any]]
    input_files: list[dict[str, Any]]
    parent_id: str | None
    retries: list[str]


def source_specs(services: Services) -> dict[str, str]:
    """Connection spec id → name, for the specs a flow can read from."""
    return {
        spec_id: str(spec.get("name", spec_id))
        for spec_id, spec in services.catalog.connection_specs.items()
        if spec.get("sourceSpec")
    }


def flows_page(
    services: Services,
    caller: Caller,
    *,
    status: str = "",
    source: str = "",
    text: str = "",
    sort: str = "-createdAt",
    after: list[Any] | None = None,
    limit: int = 50,
) -> tuple[list[FlowRow], list[Any] | None]:
    """A page of the tenant's dataflows, filtered by the last run's status, the source's connection
    spec and text in the name, with the sort key to continue after."""
    params: list[tuple[str, str]] = [("orderby", sort if sort in FLOW_SORTS else "-createdAt")]
    if status in RUN_STATUSES:
        params.append(("property", f"lastRunDetails.state=={status}"))
    if source:
        params.append(("property", f"inheritedAttributes.sourceConnections[].connectionSpec.id=={source}"))
    query = parse_list_query(params)
    with services.db.reader() as session:
        rows, following = repos.flows(session, caller.tenant).page(
            limit=limit,
            filters=query.filters,
            order=query.order,
            after=after,
            name_contains=text.strip() or None,
        )
        flows = [row.doc for row in rows]
        return _flow_rows(services, caller, session, flows), following


def flow(services: Services, caller: Caller, flow_id: str) -> FlowRow:
    with services.db.reader() as session:
        row = repos.flows(session, caller.tenant).get(flow_id)
        if row is None:
            raise NotFound("flows", flow_id)
        [found] = _flow_rows(services, caller, session, [row.doc])
        return found


def _flow_rows(
    services: Services, caller: Caller, session: Any, flows: list[dict[str, Any]]
) -> list[FlowRow]:
    tenant = caller.tenant
    sources = repos.source_connections(session, tenant).get_many(
        s for f in flows for s in f.get("sourceConnectionIds", [])[:1]
    )
    targets = repos.target_connections(session, tenant).get_many(
        t for f in flows for t in f.get("targetConnectionIds", [])[:1]
    )
    dataset_of = {t.id: str((t.doc.get("params") or {}).get("dataSetId", "")) for t in targets.values()}
    datasets = repos.datasets(session, tenant).get_many(d for d in dataset_of.values() if d)
    strips = monitoring_repo.recent_runs(session, tenant, [f["id"] for f in flows], STRIP)
    names = source_specs(services)
    result = []
    for doc in flows:
        source = sources.get(next(iter(doc.get("sourceConnectionIds", [])), ""))
        spec_id = source.spec_id if source is not None else ""
        dataset_id = dataset_of.get(next(iter(doc.get("targetConnectionIds", [])), ""), "")
        dataset = datasets.get(dataset_id)
        params = doc.get("scheduleParams") or {}
        result.append(
            FlowRow(
                id=doc["id"],
                name=str(doc.get("name", "")),
                state=str(doc.get("state", "")),
                source_spec=spec_id,
                source_name=names.get(spec_id, spec_id or "—"),
                dataset_id=dataset_id,
                dataset_name=str(dataset.doc.get("name", dataset_id)) if dataset is not None else dataset_id,
                schedule=schedule.describe(params),
                frequency=str(params.get("frequency", "")),
                strip=strips.get(doc["id"], []),
                doc=doc,
            )
        )
    return result


def runs_page(
    services: Services,
    caller: Caller,
    flow_id: str,
    *,
    status: str = "",
    since: int | None = None,
    until: int | None = None,
    after: tuple[int, str] | None = None,
    limit: int = 50,
) -> tuple[list[RunBrief], tuple[int, str] | None]:
    with services.db.reader() as session:
        return monitoring_repo.runs_of_flow(
            session,
            caller.tenant,
            flow_id,
            statuses=[status] if status in RUN_STATUSES else [],
            since=since,
            until=until,
            after=after,
            limit=limit,
        )


def chart_runs(services: Services, caller: Caller, flow_id: str) -> list[RunBrief]:
    """The flow's last runs, oldest first, for the chart of records ingested and failed."""
    page, _ = runs_page(services, caller, flow_id, limit=CHART)
    return list(reversed(page))


def run(services: Services, caller: Caller, run_id: str) -> RunView:
    doc = runs.get_run(services, caller.tenant, run_id)
    with services.db.reader() as session:
        flow_row = repos.flows(session, caller.tenant).get(str(doc["flowId"]))
        retries = [
            r.id
            for r in monitoring_repo.runs_of_flow(session, caller.tenant, str(doc["flowId"]), limit=200)[0]
            if r.retry_of == run_id
        ]
    batch_id = _batch_of(doc)
    return RunView(
        doc=doc,
        flow_name=str(flow_row.doc.get("name", "")) if flow_row is not None else "(deleted)",
        batch_id=batch_id,
        failed_preview=list(_failed_records(services, caller, batch_id, PREVIEW)) if batch_id else [],
        input_files=_input_files(services, caller, batch_id) if batch_id else [],
        parent_id=doc.get("parentFlowRunId"),
        retries=retries,
    )


def failed_records_jsonl(services: Services, caller: Caller, run_id: str) -> Iterator[bytes]:
    """Every failed record of the run with its reasons, as JSON lines (the download)."""
    doc = runs.get_run(services, caller.tenant, run_id)
    batch_id = _batch_of(doc)
    if batch_id is None:
        raise NotFound("failedRecords", run_id)
    for record in _failed_records(services, caller, batch_id, None):
        yield (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _batch_of(doc: dict[str, Any]) -> str | None:
    for activity in doc.get("activities") or []:
        for target in activity.get("targetInfo") or []:
            ids = (target.get("reference") or {}).get("ids") or []
            if ids:
                return str(ids[0])
    return None


def _failed_records(
    services: Services, caller: Caller, batch_id: str, limit: int | None
) -> Iterator[dict[str, Any]]:
    try:
        listing = export.meta(services, caller.tenant, batch_id, "row_errors")
    except FlowServiceError:  # no diagnostics kept (errorDiagnosticsEnabled off) or no batch
        return
    if not isinstance(listing, export.Listing):
        listing.close()
        return
    shown = 0
    for file in listing.files:
        with export.open_file(services, caller.tenant, batch_id, file.path) as stream:
            for line in stream:
                if limit is not None and shown >= limit:
                    return
                if line.strip():
                    yield json.loads(line)
                    shown += 1


def _input_files(services: Services, caller: Caller, batch_id: str) -> list[dict[str, Any]]:
    try:
        stream = export.open_file(services, caller.tenant, batch_id, "input_files")
    except FlowServiceError:
        return []
    with stream:
        files = json.load(stream).get("files", [])
    return [f for f in files if isinstance(f, dict)]


def in_flight(services: Services, caller: Caller, flow_id: str | None = None) -> list[RunBrief]:
    with services.db.reader() as session:
        return monitoring_repo.in_flight(session, caller.tenant, flow_id)

"""Dataflows: a flow spec joining source connections to target connections, with a schedule and options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowservice.domain import schedule
from flowservice.domain.flows import runs_link
from flowservice.errors import InvalidRequest, shown
from flowservice.schemas.resources import FlowCreate, Transformation
from flowservice.services import params
from flowservice.services.resources import Prepared, Work
from flowservice.store.repos import resources as repos
from flowservice.store.tables import Flow, NamedResource


class FlowKind:
    collection = "flows"
    model = Flow
    create_model = FlowCreate
    patchable = frozenset({"name", "description", "scheduleParams", "transformations", "options", "labels"})
    record_ops = True

    def prepare(self, work: Work, body: FlowCreate, previous: Flow | None) -> Prepared:
        spec = work.services.catalog.flow_spec(body.flowSpec.id)
        if spec is None:
            raise InvalidRequest(
                "1413", f"The spec ID provided is invalid: '{body.flowSpec.id}'.", field="flowSpec.id"
            )
        if previous is not None and previous.spec_id != spec["id"]:
            raise InvalidRequest("1414", "The flow spec of a flow cannot be changed.", field="flowSpec")
        tenant = work.caller.tenant
        sources = _connections(
            repos.source_connections(work.session, tenant).get_many(body.sourceConnectionIds),
            body.sourceConnectionIds,
            spec,
            "sourceConnectionIds",
            "sourceConnectionSpecIds",
        )
        targets = _connections(
            repos.target_connections(work.session, tenant).get_many(body.targetConnectionIds),
            body.targetConnectionIds,
            spec,
            "targetConnectionIds",
            "targetConnectionSpecIds",
        )
        fields: dict[str, Any] = {"name": body.name}
        if body.description is not None:
            fields["description"] = body.description
        fields["flowSpec"] = body.flowSpec.wire(spec["version"])
        fields["sourceConnectionIds"] = body.sourceConnectionIds
        fields["targetConnectionIds"] = body.targetConnectionIds
        fields["transformations"] = _transformations(body.transformations, spec)
        _check_mapping(work, fields["transformations"], targets)
        extra: dict[str, Any] = {}
        if (spec.get("attributes") or {}).get("frequency") == "batch":
            new = schedule.parse(body.scheduleParams)
            if previous is None:
                extra = _cursor_columns(schedule.first_cursor(new))
            elif previous.doc.get("scheduleParams") != body.scheduleParams:
                old = schedule.parse(previous.doc["scheduleParams"])
                schedule.check_update(old, new, work.now // 1000)
                cursor = None
                if previous.schedule_window_start is not None:
                    cursor = schedule.Cursor(previous.schedule_window_start, previous.schedule_next_at)
                extra = _cursor_columns(schedule.reschedule(new, cursor))
            fields["scheduleParams"] = body.scheduleParams
        elif body.scheduleParams is not None:
            fields["scheduleParams"] = body.scheduleParams
        if body.options is not None:
            fields["options"] = _options(body.options)
        if body.labels is not None:
            fields["labels"] = body.labels
        fields["inheritedAttributes"] = {
            "properties": {"isSourceFlow": True},
            "sourceConnections": [
                {
                    "id": s.id,
                    "connectionSpec": s.doc["connectionSpec"],
                    **(
                        {"baseConnection": s.doc["inheritedAttributes"]["baseConnection"]}
                        if s.doc.get("inheritedAttributes", {}).get("baseConnection")
                        else {}
                    ),
                }
                for s in sources
            ],
            "targetConnections": [{"id": t.id, "connectionSpec": t.doc["connectionSpec"]} for t in targets],
        }
        fields["runs"] = runs_link(work.resource_id)
        return Prepared(fields, extra=extra, links=(body.sourceConnectionIds, body.targetConnectionIds))

    def editable(self, work: Work, row: Flow) -> dict[str, Any]:
        return dict(row.doc)

    def check_delete(self, work: Work, row: Flow) -> None:
        return None

    def after_write(self, work: Work, row_id: str, prepared: Prepared) -> None:
        if prepared.links is not None:
            repos.set_flow_links(work.session, row_id, *prepared.links)


def _cursor_columns(cursor: schedule.Cursor) -> dict[str, Any]:
    return {"schedule_window_start": cursor.window_start, "schedule_next_at": cursor.next_fire}


def _connections(
    found: dict[str, Any], ids: Sequence[str], spec: dict[str, Any], field: str, allowed_key: str
) -> list[NamedResource]:
    rows: list[NamedResource] = []
    allowed = spec.get(allowed_key) or []
    noun = "source" if field.startswith("source") else "target"
    for index, connection_id in enumerate(ids):
        row = found.get(connection_id)
        if row is None:
            raise InvalidRequest(
                "1000", f"The {noun} connection '{connection_id}' does not exist.", field=f"{field}[{index}]"
            )
        if row.spec_id not in allowed:
            raise InvalidRequest(
                "1413",
                f"The {noun} connection '{connection_id}' uses connection spec {row.spec_id}, "
                f"which flow spec {spec['name']} does not accept.",
                field=f"{field}[{index}]",
            )
        rows.append(row)
    return rows


def _transformations(items: list[Transformation], spec: dict[str, Any]) -> list[dict[str, Any]]:
    specs = {t["name"]: t for t in spec.get("transformationSpec") or []}
    for index, item in enumerate(items):
        t_spec = specs.get(item.name)
        if t_spec is None:
            names = ", ".join(specs) or "none"
            raise InvalidRequest(
                "1000",
                f"Unknown transformation '{item.name}' for flow spec {spec['name']}; supported: {names}.",
                field=f"transformations[{index}].name",
            )
        params.check(t_spec.get("spec") or {}, item.params, f"transformations[{index}].params")
    present = {item.name for item in items}
    for name, t_spec in specs.items():
        if t_spec.get("required") and name not in present:
            if name == "Copy":
                raise InvalidRequest(
                    "1367",
                    f"A Copy transformation with params.deltaColumn is required by flow spec {spec['name']}.",
                    field="transformations",
                )
            raise InvalidRequest("1000", f"The transformation '{name}' is required.", field="transformations")
    return [item.model_dump() for item in items]


def _check_mapping(work: Work, transformations: list[dict[str, Any]], targets: list[NamedResource]) -> None:
    """A Mapping transformation names a mapping set of this tenant, into the targets' dataset schema."""
    for index, item in enumerate(transformations):
        if item["name"] != "Mapping":
            continue
        where = f"transformations[{index}].params"
        mapping_id = str(item["params"].get("mappingId", ""))
        mapping = repos.mapping_sets(work.session, work.caller.tenant).get(mapping_id)
        if mapping is None:
            raise InvalidRequest(
                "1000", f"The mapping set '{mapping_id}' does not exist.", field=f"{where}.mappingId"
            )
        version = item["params"].get("mappingVersion", mapping.doc["version"])
        if str(version) != str(mapping.doc["version"]):
            raise InvalidRequest(
                "1412",
                f"The mapping set {mapping_id} has version {mapping.doc['version']}, not {version}.",
                field=f"{where}.mappingVersion",
            )
        for target in targets:
            dataset = repos.datasets(work.session, work.caller.tenant).get(
                str(target.doc["params"]["dataSetId"])
            )
            if dataset is not None and dataset.schema_id != mapping.schema_id:
                raise InvalidRequest(
                    "1000",
                    f"The mapping set {mapping_id} maps into schema {mapping.schema_id}, "
                    f"but the target dataset {dataset.id} uses {dataset.schema_id}.",
                    field=f"{where}.mappingId",
                )


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """Options as Adobe echoes them: numeric strings become numbers (`"10"` → 10), flags booleans."""
    result = dict(options)
    if "partialIngestionPercent" in result:
        value = result["partialIngestionPercent"]
        number = _number(value)
        if number is None or not 0 < number <= 100:
            raise InvalidRequest(
                "1000",
                f"options.partialIngestionPercent must be a number above 0 and at most 100, not {shown(value)}.",
                field="options.partialIngestionPercent",
            )
        result["partialIngestionPercent"] = int(number) if float(number).is_integer() else number
    if "errorDiagnosticsEnabled" in result:
        flag = result["errorDiagnosticsEnabled"]
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if not isinstance(flag, bool):
            raise InvalidRequest(
                "1000",
                f"options.errorDiagnosticsEnabled must be true or false, not {shown(flag)}.",
                field="options.errorDiagnosticsEnabled",
            )
        result["errorDiagnosticsEnabled"] = flag
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


KIND = FlowKind()

"""Target connections: the dataset a flow writes to, through the Data Lake connection spec."""

from __future__ import annotations

from typing import Any

from flowservice import catalog
from flowservice.errors import InvalidRequest
from flowservice.schemas.resources import TargetConnectionCreate
from flowservice.services.resources import Prepared, Work, refuse_if_used_by_flows
from flowservice.store.repos import resources as repos
from flowservice.store.tables import TargetConnection


class TargetConnectionKind:
    collection = "targetConnections"
    model = TargetConnection
    create_model = TargetConnectionCreate
    patchable = frozenset({"name", "description", "params", "data"})
    record_ops = True

    def prepare(
        self, work: Work, body: TargetConnectionCreate, previous: TargetConnection | None
    ) -> Prepared:
        if body.connectionSpec.id != catalog.DATA_LAKE:
            raise InvalidRequest(
                "1307",
                f"The target connection spec must be the Data Lake ({catalog.DATA_LAKE}), "
                f"not '{body.connectionSpec.id}'.",
                field="connectionSpec.id",
            )
        spec = work.services.catalog.connection_spec(catalog.DATA_LAKE) or {}
        dataset_id = body.params.get("dataSetId")
        if not isinstance(dataset_id, str) or not dataset_id:
            raise InvalidRequest("1325", "params.dataSetId is required.", field="params.dataSetId")
        dataset = repos.datasets(work.session, work.caller.tenant).get(dataset_id)
        if dataset is None:
            raise InvalidRequest(
                "1000",
                f"The dataset '{dataset_id}' does not exist in this sandbox.",
                field="params.dataSetId",
            )
        fields: dict[str, Any] = {"name": body.name}
        if body.description is not None:
            fields["description"] = body.description
        data = body.data.model_dump(by_alias=True, exclude_none=True)
        schema = data.get("schema")
        if isinstance(schema, dict) and schema.get("id") not in (None, dataset.schema_id):
            raise InvalidRequest(
                "1000",
                f"data.schema.id must be the dataset's schema {dataset.schema_id}.",
                field="data.schema.id",
            )
        fields["data"] = data
        fields["params"] = body.params
        fields["connectionSpec"] = body.connectionSpec.wire(spec.get("version", "1.0"))
        return Prepared(fields)

    def editable(self, work: Work, row: TargetConnection) -> dict[str, Any]:
        return dict(row.doc)

    def check_delete(self, work: Work, row: TargetConnection) -> None:
        refuse_if_used_by_flows(work, row.id)

    def after_write(self, work: Work, row_id: str, prepared: Prepared) -> None:
        return None


KIND = TargetConnectionKind()

"""Source connections: what to read (a path, a table) and how (format), over a base connection."""

from __future__ import annotations

from typing import Any

from flowservice import catalog
from flowservice.errors import InvalidRequest
from flowservice.schemas.resources import SourceConnectionCreate
from flowservice.services import params
from flowservice.services.resources import Prepared, Work, refuse_if_used_by_flows
from flowservice.store.repos import resources as repos
from flowservice.store.tables import SourceConnection

FILE_FORMATS = ("delimited", "json", "parquet")
TABLE_FORMATS = ("tabular",)
ENCODINGS = ("UTF-8", "ISO-8859-1")
COMPRESSIONS = ("none", "gzip", "bzip2", "zip", "zipDeflate", "deflate", "tar", "tarGzip")


class SourceConnectionKind:
    collection = "sourceConnections"
    model = SourceConnection
    create_model = SourceConnectionCreate
    patchable = frozenset({"name", "description", "params", "data"})
    record_ops = True

    def prepare(
        self, work: Work, body: SourceConnectionCreate, previous: SourceConnection | None
    ) -> Prepared:
        spec = work.services.catalog.connection_spec(body.connectionSpec.id)
        if spec is None or not spec.get("sourceSpec"):
            raise InvalidRequest(
                "1413",
                f"The spec ID provided is invalid: '{body.connectionSpec.id}' is not a source connection spec.",
                field="connectionSpec.id",
            )
        if previous is not None and previous.spec_id != spec["id"]:
            raise InvalidRequest("1414", "The connection spec cannot be changed.", field="connectionSpec")
        fields: dict[str, Any] = {"name": body.name}
        if body.description is not None:
            fields["description"] = body.description
        inherited: dict[str, Any] = {}
        if spec.get("authSpec"):
            base = self._base_connection(work, body, spec)
            fields["baseConnectionId"] = base.id
            inherited = {"baseConnection": {"id": base.id, "connectionSpec": base.doc["connectionSpec"]}}
        elif body.baseConnectionId is not None:
            raise InvalidRequest(
                "1332",
                f"{spec['name']} source connections take no baseConnectionId.",
                field="baseConnectionId",
            )
        fields["data"] = _data(body, spec)
        params.check(spec["sourceSpec"]["spec"], body.params, "params")
        if spec["id"] == catalog.DATA_LANDING_ZONE:
            _inside_landing_zone(str(body.params.get("path", "")))
        fields["params"] = body.params
        fields["connectionSpec"] = body.connectionSpec.wire(spec["version"])
        fields["inheritedAttributes"] = inherited
        return Prepared(fields)

    def _base_connection(self, work: Work, body: SourceConnectionCreate, spec: dict[str, Any]) -> Any:
        if not body.baseConnectionId:
            raise InvalidRequest(
                "1000",
                f"baseConnectionId is required for {spec['name']} source connections.",
                field="baseConnectionId",
            )
        base = repos.connections(work.session, work.caller.tenant).get(body.baseConnectionId)
        if base is None:
            raise InvalidRequest(
                "1000",
                f"The base connection '{body.baseConnectionId}' does not exist.",
                field="baseConnectionId",
            )
        if base.spec_id != spec["id"]:
            raise InvalidRequest(
                "1413",
                f"The base connection '{base.id}' is a {base.doc['connectionSpec']['id']} connection, "
                f"not {spec['id']} ({spec['name']}).",
                field="connectionSpec.id",
            )
        return base

    def editable(self, work: Work, row: SourceConnection) -> dict[str, Any]:
        return dict(row.doc)

    def check_delete(self, work: Work, row: SourceConnection) -> None:
        refuse_if_used_by_flows(work, row.id)

    def after_write(self, work: Work, row_id: str, prepared: Prepared) -> None:
        return None


def _data(body: SourceConnectionCreate, spec: dict[str, Any]) -> dict[str, Any]:
    data = body.data
    allowed = (
        FILE_FORMATS if catalog.is_file_source(spec) else TABLE_FORMATS if spec.get("exploreSpec") else None
    )
    if allowed is not None and data.format not in allowed:
        raise InvalidRequest(
            "1000",
            f"data.format must be one of {', '.join(allowed)} for {spec['name']}.",
            field="data.format",
        )
    properties = data.properties or {}
    if "encoding" in properties and properties["encoding"] not in ENCODINGS:
        raise InvalidRequest(
            "1000",
            f"data.properties.encoding must be one of {', '.join(ENCODINGS)}.",
            field="data.properties.encoding",
        )
    if "compressionType" in properties and properties["compressionType"] not in COMPRESSIONS:
        raise InvalidRequest(
            "1000",
            f"data.properties.compressionType must be one of {', '.join(COMPRESSIONS)}.",
            field="data.properties.compressionType",
        )
    delimiter = properties.get("columnDelimiter")
    if delimiter is not None and not (isinstance(delimiter, str) and len(delimiter) == 1):
        raise InvalidRequest(
            "1000",
            "data.properties.columnDelimiter must be a single character.",
            field="data.properties.columnDelimiter",
        )
    return data.model_dump(by_alias=True, exclude_none=True)


def _inside_landing_zone(path: str) -> None:
    parts = path.replace("\\", "/").split("/")
    if ".." in parts or "\x00" in path:
        raise InvalidRequest(
            "1000", "params.path must stay inside the landing zone (no '..').", field="params.path"
        )


KIND = SourceConnectionKind()

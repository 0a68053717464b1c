"""Browsing a source before making a dataflow: `explore` (folders, files, previews) and `test`.

Shapes follow digest 8.3: a folder is a bare JSON array of `{type, name, path, canPreview,
canFetchSchema}`; a file preview is `{"format": "flat", "schema": {"columns": [...]}, "data": [...]}`,
plus `properties` when asked to determine them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowservice import catalog, egress
from flowservice.connectors import registry
from flowservice.connectors.base import ConnectorError, FileSource, ObjectMissing, TableSource
from flowservice.domain.tenancy import Caller
from flowservice.engine import arrow_io
from flowservice.errors import FlowServiceError, InvalidRequest, NotFound
from flowservice.services.context import Services
from flowservice.store.repos import resources as repos

OBJECT_TYPES = ("root", "folder", "file", "table")
FILE_PROPERTIES = ("filetype", "columndelimiter", "compressiontype", "encoding")
PREVIEW_ROWS = 10


class ConnectorFailed(FlowServiceError):
    """A source answered an explore or test with an error; the message is the connector's, secret-free."""

    def __init__(self, error: ConnectorError) -> None:
        status = 404 if isinstance(error, ObjectMissing) else 400
        super().__init__("1300", status, "Source error", str(error)[:1000])


def explore_connection(
    services: Services, caller: Caller, connection_id: str, query: Mapping[str, str]
) -> Any:
    source = _source_of_connection(services, caller, connection_id)
    if isinstance(source, TableSourceHandle):
        return _explore_tables(source.source, query)
    return _explore(source, query)


def explore_spec(services: Services, caller: Caller, spec_id: str, query: Mapping[str, str]) -> Any:
    """Only the Data Landing Zone is explored without a base connection (it has none)."""
    spec = services.catalog.connection_spec(spec_id)
    if spec is None:
        raise NotFound("connectionSpecs", spec_id)
    if spec_id != catalog.DATA_LANDING_ZONE:
        raise InvalidRequest(
            "1336", f"Explore without a base connection is not supported for {spec['name']}.", field="id"
        )
    return _explore(registry.file_source(spec_id, {}, landing_zone_root=_zone(services, caller)), query)


def test_connection(services: Services, caller: Caller, connection_id: str) -> dict[str, Any]:
    source = _source_of_connection(services, caller, connection_id)
    try:
        source.test()
    except ConnectorError as exc:
        return {"result": False, "message": str(exc)[:1000]}
    finally:
        source.close()
    return {"result": True}


@dataclass(frozen=True, slots=True)
class TableSourceHandle:
    """A database source (FileSource and TableSource are Protocols, so isinstance cannot tell them apart)."""

    source: TableSource

    def test(self) -> None:
        self.source.test()

    def close(self) -> None:
        self.source.close()


def _source_of_connection(
    services: Services, caller: Caller, connection_id: str
) -> FileSource | TableSourceHandle:
    with services.db.reader() as session:
        row = repos.connections(session, caller.tenant).get(connection_id)
    if row is None:
        raise NotFound("connections", connection_id)
    spec = services.catalog.connection_spec(row.spec_id) or {}
    if not spec.get("exploreSpec"):
        raise InvalidRequest(
            "1336", f"Explore is not supported for {spec.get('name', row.spec_id)}.", field="id"
        )
    params = dict((row.doc.get("auth") or {}).get("params") or {})
    if row.secrets:
        params.update(services.box.open(row.secrets))
    try:
        if row.spec_id in registry.TABLE_SOURCES:
            return TableSourceHandle(registry.table_source(row.spec_id, params))
        return registry.file_source(
            row.spec_id,
            params,
            landing_zone_root=_zone(services, caller),
            egress=egress.policy_of(services.settings),
        )
    except ConnectorError as exc:
        raise ConnectorFailed(exc) from None


def _zone(services: Services, caller: Caller) -> Path:
    return services.settings.landing_zone / caller.tenant.org_id / caller.tenant.sandbox_name


def _explore(source: FileSource, raw: Mapping[str, str]) -> Any:
    query = {k.lower(): v for k, v in raw.items()}  # the spec spells FileType, the docs fileType
    object_type = query.get("objecttype", "root").lower()
    if object_type not in OBJECT_TYPES:
        raise InvalidRequest(
            "1358", f"Invalid objectType '{object_type[:40]}'; use root, folder or file.", field="objectType"
        )
    path = query.get("object", "")
    try:
        if object_type == "root":
            return [item.wire() for item in source.explore(None)]
        if not path:
            raise InvalidRequest(
                "1337", f"The object to explore is required for objectType {object_type}.", field="object"
            )
        if object_type == "folder":
            return [item.wire() for item in source.explore(path)]
        if object_type == "table":
            raise InvalidRequest("1358", "objectType table is for database sources.", field="objectType")
        return _preview(source, path, query)
    except ConnectorError as exc:
        raise ConnectorFailed(exc) from None
    finally:
        source.close()


def _explore_tables(source: TableSource, raw: Mapping[str, str]) -> Any:
    """Tables at the root; a table's columns with their XDM types, and its first rows on `preview=true`."""
    query = {k.lower(): v for k, v in raw.items()}
    object_type = query.get("objecttype", "root").lower()
    try:
        if object_type == "root":
            return [item.wire() for item in source.tables()]
        if object_type != "table":
            raise InvalidRequest(
                "1358",
                f"Invalid objectType '{object_type[:40]}' for a database; use root or table.",
                field="objectType",
            )
        table = query.get("object", "")
        if not table:
            raise InvalidRequest(
                "1337", "The object to explore is required for objectType table.", field="object"
            )
        answer: dict[str, Any] = {
            "format": "flat",
            "schema": {"columns": [column.wire() for column in source.columns(table)]},
        }
        if query.get("preview", "").lower() == "true":
            answer["data"] = source.preview(table, PREVIEW_ROWS)
        return answer
    except ConnectorError as exc:
        raise ConnectorFailed(exc) from None
    finally:
        source.close()


def _preview(source: FileSource, path: str, query: dict[str, str]) -> dict[str, Any]:
    determine = query.get("determineproperties", "").lower() == "true"
    declared = {k: query[k] for k in FILE_PROPERTIES if k in query}
    if determine and declared:
        raise InvalidRequest(
            "1374",
            "Give either determineProperties=true or the file properties (fileType, …), not both.",
            field="determineProperties",
        )
    if not determine and "filetype" not in declared:
        raise InvalidRequest(
            "1374", "Give fileType (delimited, json, parquet) or determineProperties=true.", field="fileType"
        )
    with source.open(path) as head_stream:
        head = head_stream.read(64 * 1024)
    if determine:
        spec = arrow_io.detect(path, head)
    else:
        data = {
            "format": declared["filetype"],
            "properties": {
                key: declared[name]
                for name, key in (
                    ("columndelimiter", "columnDelimiter"),
                    ("compressiontype", "compressionType"),
                    ("encoding", "encoding"),
                )
                if name in declared
            },
        }
        spec = arrow_io.spec_from_connection(data, path, head)
    with source.open(path) as stream:
        try:
            columns, rows = arrow_io.preview(stream, spec, rows=PREVIEW_ROWS)
        except arrow_io.UnreadableFile as exc:
            raise InvalidRequest(
                "1000", f"{path} could not be read as {spec.format}: {exc}", field="object"
            ) from None
    answer: dict[str, Any] = {
        "format": "flat",
        "schema": {"columns": [{**c, "xdm": {"type": c["type"]}} for c in columns]},
        "data": rows,
    }
    if determine:
        answer["properties"] = {
            "fileType": spec.format,
            "compressionType": spec.compression,
            "columnDelimiter": spec.delimiter,
            "encoding": spec.encoding,
        }
    return answer

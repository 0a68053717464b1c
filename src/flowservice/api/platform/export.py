"""Data Access: `/data/foundation/export/batches/{id}/files|meta` and `/export/files/{id}`.

Every `fileInfo`, `failedRecords` and `sampleErrors` URL a run returns resolves here.
"""

from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from flowservice.api.deps import CallerDep, ServicesDep
from flowservice.api.openapi import FileLinks, files_or_download, ok
from flowservice.services import export
from flowservice.services.context import Services

router = APIRouter(prefix="/data/foundation/export", tags=["Data Access"])
BASE = "/data/foundation/export"
PathParam = Annotated[str, Query(max_length=1024, description="a file or folder of the batch")]


def _stream(handle: BinaryIO, name: str) -> StreamingResponse:
    def chunks() -> Any:
        with handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    if name.endswith(".parquet"):
        media = "application/octet-stream"
    elif name.startswith("row_errors/"):
        media = "application/x-ndjson"
    else:
        media = "application/json"
    return StreamingResponse(chunks(), media_type=media)


def _link(services: Services, batch_id: str, path: str) -> str:
    return f"{services.settings.public_url}{BASE}/files/{batch_id}?path={path}"


@router.get(
    "/batches/{batch_id}/files",
    summary="The dataset files of a batch",
    response_model=None,
    responses=ok(FileLinks),
)
def batch_files(batch_id: str, services: ServicesDep, caller: CallerDep) -> Any:
    export.place_of(services, caller.tenant, batch_id)
    href = f"{services.settings.public_url}{BASE}/files/{batch_id}"
    return {
        "data": [{"dataSetFileId": batch_id, "_links": {"self": {"href": href}}}],
        "_page": {"limit": 100, "count": 1},
    }


@router.get(
    "/batches/{batch_id}/meta",
    summary="A batch's manifest and diagnostics",
    response_model=None,
    responses=files_or_download(),
)
def batch_meta(batch_id: str, path: PathParam, services: ServicesDep, caller: CallerDep) -> Any:
    found = export.meta(services, caller.tenant, batch_id, path)
    if isinstance(found, export.Listing):
        return {
            "data": [
                {
                    "name": f.path,
                    "length": str(f.size),
                    "_links": {"self": {"href": _link(services, batch_id, f.path)}},
                }
                for f in found.files
            ],
            "_page": {"limit": len(found.files), "count": len(found.files)},
        }
    return _stream(found, path)


@router.get(
    "/files/{batch_id}",
    summary="List a batch's files, or download one with ?path=",
    response_model=None,
    responses=files_or_download(),
)
def files(
    batch_id: str,
    services: ServicesDep,
    caller: CallerDep,
    path: Annotated[str | None, Query(max_length=1024)] = None,
) -> Any:
    if path:
        return _stream(export.open_file(services, caller.tenant, batch_id, path), path)
    listed = export.data_files(services, caller.tenant, batch_id)
    return {
        "data": [
            {
                "name": f.path,
                "length": str(f.size),
                "_links": {"self": {"href": _link(services, batch_id, f.path)}},
            }
            for f in listed
        ],
        "_page": {"limit": len(listed), "count": len(listed)},
    }

"""Data Access (export): the files of a batch, and the manifest and diagnostics URLs runs return.

`GET /export/batches/{id}/meta?path=input_files|row_errors|row_error_samples.json` answers the
manifest and diagnostics of a run's batch; `GET /export/files/{id}?path=…` streams one file.
Only committed batches of the caller's tenant are visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from flowservice.domain.tenancy import Tenant
from flowservice.engine.lake import BatchPlace, LakeFile, LakePathError
from flowservice.errors import InvalidRequest, NotFound
from flowservice.services.context import Services
from flowservice.store.repos import resources as repos

DATA_PREFIX = "part-"


@dataclass(frozen=True, slots=True)
class Listing:
    files: list[LakeFile]


def place_of(services: Services, tenant: Tenant, batch_id: str) -> BatchPlace:
    """Where the committed batch is: its row says which upload it is in an S3 lake (`lakeAttempt`,
    written by the commit), so an upload no row names is never read."""
    with services.db.reader() as session:
        row = repos.batches(session, tenant).get(batch_id)
    if row is None:
        raise NotFound("batches", batch_id)
    attempt = str((row.doc.get("flowservice") or {}).get("lakeAttempt") or "")
    return BatchPlace(tenant.org_id, tenant.sandbox_name, row.dataset_id, batch_id, attempt)


def data_files(services: Services, tenant: Tenant, batch_id: str) -> list[LakeFile]:
    place = place_of(services, tenant, batch_id)
    return [f for f in services.lake.files(place) if f.path.startswith(DATA_PREFIX)]


def meta(services: Services, tenant: Tenant, batch_id: str, path: str) -> Listing | BinaryIO:
    """A folder of the batch as a listing, a file of it as a stream."""
    place = place_of(services, tenant, batch_id)
    if not path:
        raise InvalidRequest(
            "1000", "The query parameter path is required, e.g. path=input_files.", field="path"
        )
    try:
        if not services.lake.exists(place, path):
            raise NotFound("files", f"{batch_id}/{path}")
        if services.lake.is_folder(place, path):
            return Listing(services.lake.files(place, path))
        return services.lake.open(place, path)
    except LakePathError as exc:
        raise InvalidRequest("1000", str(exc), field="path") from None


def open_file(services: Services, tenant: Tenant, batch_id: str, path: str) -> BinaryIO:
    result = meta(services, tenant, batch_id, path)
    if isinstance(result, Listing):
        raise InvalidRequest(
            "1000", f"{path} is a folder; list it with the batch's meta endpoint.", field="path"
        )
    return result

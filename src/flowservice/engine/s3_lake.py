"""The lake in an S3 bucket (AWS, MinIO, Ceph…), so that workers on many machines share one lake.

Layout, under `s3://{bucket}/{prefix}/`:

    {org}/{sandbox}/datasets/{dataset}/batches/{batch}/.attempts/{attempt}/…   one upload of a batch:
        part-*.parquet, input_files, row_errors/part-*.json, row_error_samples.json
    {org}/{sandbox}/.pending/{run}/{dataset}/{batch}/{attempt}   an upload not settled yet (a marker)
    .retention-diagnostics                                       retention's mark

S3 has no rename, so a batch is not made visible by moving it: each attempt of a run uploads its
batch under a prefix of its own (the lease epoch plus random bits, so no two writers ever share
one), before the commit transaction, and the commit point is that transaction: the batch row it
inserts records which attempt is the batch (`BatchPlace.attempt`). Readers resolve a batch's files
through the row, so they see the whole batch or none, and an upload by an attempt that crashed or
was fenced out is never referenced, whatever it left behind.

Every upload writes its `.pending` marker first and removes it when it learns its outcome
(`settle`); an attempt that died in between leaves the marker, and retention (through
`pending_uploads`/`remove_upload`) deletes the uploads whose run is over and whose batch row names
another attempt or none. Retention thus lists the few unsettled uploads, never the lake's history.

Engine work stays on local disk: run staging and the batch being written live in `scratch` (a
folder in the worker's home), the batch inside its run's staging folder so that the worker's
cleanup of a run removes both. Uploads go through boto3's transfer manager: files above
`multipart_bytes` go in parts of that size, a few at a time, so memory stays bounded whatever a
part's size; downloads are streamed.

boto3 is imported when an S3Lake is made, so a server with a local lake never loads it. Errors
become `LakeStorageError` (an OSError, as a local lake's would be) naming the endpoint, bucket and
key, and missing objects FileNotFoundError; credentials are handed to botocore and never kept,
logged or shown.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from flowservice.engine.lake import (
    RETENTION_MARK,
    BatchPlace,
    LakeFile,
    LakePathError,
    LocalLake,
    PendingUpload,
    StagedBatch,
    plain_name,
    relative_parts,
)

log = logging.getLogger("flowservice.lake")

ATTEMPTS = ".attempts"
PENDING = ".pending"
MULTIPART_BYTES = 16 * 2**20  # part size of multipart uploads, and the size from which they are used
TRANSFER_THREADS = 4  # parts (or files) in flight at once: memory ≈ this × MULTIPART_BYTES
DELETE_BATCH = 1000  # keys per DeleteObjects request (S3's limit)
READ_BUFFER = 1 << 20
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 5  # our own storage: worth more patience than a source's
_MISSING = {"NoSuchKey", "NotFound", "404"}


class LakeStorageError(OSError):
    """The lake's object store failed or refused a request."""


class S3Lake:
    """A lake in a bucket (under `prefix`), with engine staging in the local folder `scratch`."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        scratch: Path,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        path_style: bool = False,
        multipart_bytes: int = MULTIPART_BYTES,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url or None
        self.scratch = LocalLake(scratch)
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path" if path_style else "auto"},
            signature_version="s3v4",
            max_pool_connections=4 * TRANSFER_THREADS,
            # checksums only where S3 requires them: MinIO and Ceph releases before 2025 refuse the others
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A session of our own: the default session is shared and not thread-safe (clients are).
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_bytes,
            multipart_chunksize=multipart_bytes,
            max_concurrency=TRANSFER_THREADS,
            use_threads=True,
        )

    def __repr__(self) -> str:
        return f"S3Lake(s3://{self.bucket}/{self.prefix}, endpoint={self.endpoint_url or 'AWS'})"

    def close(self) -> None:
        self._client.close()

    # -- local staging: the engine's work ------------------------------------------------------------

    def run_staging(self, org: str, sandbox: str, run_id: str) -> Path:
        return self.scratch.run_staging(org, sandbox, run_id)

    def discard(self, path: Path) -> None:
        self.scratch.discard(path)

    def stale_runs(self, org: str, sandbox: str, before_ms: int) -> list[str]:
        """Run folders in this machine's scratch; other machines' workers discard their own."""
        return self.scratch.stale_runs(org, sandbox, before_ms)

    def remove_run_staging(self, org: str, sandbox: str, run_id: str) -> int | None:
        return self.scratch.remove_run_staging(org, sandbox, run_id)

    def batch_staging(self, place: BatchPlace, run_id: str, attempt: str) -> StagedBatch:
        """Inside the run's staging folder (a hidden name no staged file has), so that discarding the
        run's staging discards it too; its upload gets `attempt` plus random bits as its name."""
        _check(place.org, place.sandbox, place.dataset_id, place.batch_id, run_id, attempt)
        path = self.run_staging(place.org, place.sandbox, run_id) / f".batch-{attempt}"
        self.scratch.discard(path)
        path.mkdir(parents=True)
        return StagedBatch(path, place, run_id, f"{attempt}-{secrets.token_hex(4)}")

    # -- the commit -----------------------------------------------------------------------------------

    def publish(self, staged: StagedBatch) -> BatchPlace:
        """Upload the staged batch under its attempt's prefix, its pending marker first."""
        place = replace(staged.place, attempt=staged.attempt)
        base = self._batch_prefix(place)
        marker = self._marker(staged.run_id, place)
        body = {"runId": staged.run_id, "dataSetId": place.dataset_id, "batchId": place.batch_id}
        with self._errors(marker):
            self._client.put_object(Bucket=self.bucket, Key=marker, Body=json.dumps(body).encode())
        files = sorted(p for p in staged.path.rglob("*") if p.is_file())
        try:
            self._upload(base, staged.path, files)
        except BaseException:
            self._forget(staged, place, committed=False)  # best effort: else retention collects it
            raise
        return place

    def commit(self, staged: StagedBatch, place: BatchPlace) -> None:
        """Nothing to do: the batch row the transaction inserts, naming this upload, is the commit."""

    def settle(self, staged: StagedBatch, place: BatchPlace, *, committed: bool) -> None:
        self.scratch.discard(staged.path)
        self._forget(staged, place, committed=committed)

    def _upload(self, base: str, root: Path, files: list[Path]) -> None:
        from boto3.s3.transfer import create_transfer_manager

        with self._errors(base), create_transfer_manager(self._client, self._transfer) as manager:
            futures = [
                manager.upload(str(path), self.bucket, base + path.relative_to(root).as_posix())
                for path in files
            ]
            for future in futures:
                future.result()

    def _forget(self, staged: StagedBatch, place: BatchPlace, *, committed: bool) -> None:
        """Drop the pending marker, and the upload unless committed; a failure here leaves both to
        retention, which decides from the batch row, so the run is not failed for it."""
        try:
            self.remove_upload(PendingUpload(staged.run_id, place, 0), committed=committed)
        except Exception:
            log.warning(
                "could not clean up upload %s of batch %s; retention will",
                place.attempt,
                place.batch_id,
                exc_info=True,
            )

    # -- readers --------------------------------------------------------------------------------------

    def files(self, place: BatchPlace, under: str = "") -> list[LakeFile]:
        if not place.attempt:
            return []
        base = self._batch_prefix(place)
        wanted = "/".join(relative_parts(under))
        found = [
            LakeFile(item["Key"][len(base) :], int(item["Size"]))
            for item in self._list(base + wanted)
            if not wanted or item["Key"] == base + wanted or item["Key"].startswith(f"{base}{wanted}/")
        ]
        return sorted(found, key=lambda f: f.path)

    def open(self, place: BatchPlace, relative: str) -> BinaryIO:
        """The object as a stream: bytes are fetched as they are read, never the whole at once."""
        key = self._batch_prefix(place) + "/".join(relative_parts(relative)) if place.attempt else ""
        if not key or key.endswith("/"):
            raise FileNotFoundError(f"'{relative[:200]}' is not a file of batch {place.batch_id}")
        with self._errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        return io.BufferedReader(_Body(self, response["Body"], key), buffer_size=READ_BUFFER)

    def exists(self, place: BatchPlace, relative: str) -> bool:
        try:
            wanted = "/".join(relative_parts(relative))
        except LakePathError:
            return False
        if not place.attempt:
            return False
        base = self._batch_prefix(place)
        if wanted and self._size(base + wanted) is not None:
            return True
        return self._any(f"{base}{wanted}/" if wanted else base)

    def is_folder(self, place: BatchPlace, relative: str) -> bool:
        wanted = "/".join(relative_parts(relative))
        if not place.attempt:
            return False
        base = self._batch_prefix(place)
        return self._any(f"{base}{wanted}/" if wanted else base)

    # -- retention ------------------------------------------------------------------------------------

    def remove_diagnostics(self, place: BatchPlace) -> int | None:
        """Delete the committed upload's `row_errors/…` and `row_error_samples.json`: the keys are built
        from checked names and those two, so nothing else of this batch or another can be reached."""
        _check(place.org, place.sandbox, place.dataset_id, place.batch_id)
        if not place.attempt:
            return None
        base = self._batch_prefix(place)
        victims = [(item["Key"], int(item["Size"])) for item in self._list(f"{base}row_errors/")]
        sample = f"{base}row_error_samples.json"
        size = self._size(sample)
        if size is not None:
            victims.append((sample, size))
        if not victims:
            return None
        self._delete([key for key, _ in victims])
        return sum(size for _, size in victims)

    def pending_uploads(self, org: str, sandbox: str, before_ms: int) -> list[PendingUpload]:
        _check(org, sandbox)
        root = f"{self._tenant(org, sandbox)}{PENDING}/"
        found = []
        for item in self._list(root):
            names = item["Key"][len(root) :].split("/")
            modified = _ms(item["LastModified"])
            if len(names) != 4 or not all(plain_name(n) for n in names) or modified >= before_ms:
                continue
            run_id, dataset_id, batch_id, attempt = names
            found.append(
                PendingUpload(run_id, BatchPlace(org, sandbox, dataset_id, batch_id, attempt), modified)
            )
        return found

    def remove_upload(self, pending: PendingUpload, *, committed: bool) -> int:
        place = pending.place
        marker = self._marker(pending.run_id, place)
        freed = 0 if committed else self._delete_prefix(self._batch_prefix(place))
        self._delete([marker])  # last: while it is there, retention can still find the upload
        return freed

    def diagnostics_purged_before(self) -> int:
        key = self.prefix + RETENTION_MARK
        try:
            with self._errors(key):
                body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
                try:
                    return int(body.read().decode().strip() or 0)
                finally:
                    body.close()
        except (FileNotFoundError, ValueError):
            return 0

    def set_diagnostics_purged_before(self, ms: int) -> None:
        key = self.prefix + RETENTION_MARK
        with self._errors(key):  # one PUT: readers see the old mark or the new one
            self._client.put_object(Bucket=self.bucket, Key=key, Body=f"{ms}\n".encode())

    # -- keys -----------------------------------------------------------------------------------------

    def _tenant(self, org: str, sandbox: str) -> str:
        return f"{self.prefix}{org}/{sandbox}/"

    def _batch_prefix(self, place: BatchPlace) -> str:
        _check(place.org, place.sandbox, place.dataset_id, place.batch_id, place.attempt)
        return (
            f"{self._tenant(place.org, place.sandbox)}datasets/{place.dataset_id}/batches/"
            f"{place.batch_id}/{ATTEMPTS}/{place.attempt}/"
        )

    def _marker(self, run_id: str, place: BatchPlace) -> str:
        _check(place.org, place.sandbox, run_id, place.dataset_id, place.batch_id, place.attempt)
        return (
            f"{self._tenant(place.org, place.sandbox)}{PENDING}/{run_id}/{place.dataset_id}/"
            f"{place.batch_id}/{place.attempt}"
        )

    # -- requests -------------------------------------------------------------------------------------

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        with self._errors(prefix):
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                yield from page.get("Contents") or []

    def _any(self, prefix: str) -> bool:
        with self._errors(prefix):
            page = self._client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(page.get("Contents"))

    def _size(self, key: str) -> int | None:
        """The object's size, None when there is none."""
        try:
            with self._errors(key):
                return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except FileNotFoundError:
            return None

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = keys[start : start + DELETE_BATCH]
            with self._errors(chunk[0]):
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
                )
            failed = answer.get("Errors") or []
            if failed:
                first = failed[0]
                raise LakeStorageError(
                    f"{self._where()}: could not delete {len(failed)} objects, e.g. "
                    f"s3://{self.bucket}/{first.get('Key')}: {first.get('Code')}"
                )

    def _delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`: the bytes freed."""
        found = [(item["Key"], int(item["Size"])) for item in self._list(prefix)]
        self._delete([key for key, _ in found])
        return sum(size for _, size in found)

    def _where(self) -> str:
        return f"the S3 lake at {self.endpoint_url or 'AWS'}"

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """botocore's failures as FileNotFoundError (no such key) or LakeStorageError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
            where = f"s3://{self.bucket}/{key}"
            if code in _MISSING or (status == 404 and code != "NoSuchBucket"):
                raise FileNotFoundError(f"{where} does not exist") from None
            raise LakeStorageError(
                f"{self._where()}, {where}: {code or 'error'} (HTTP {status or '?'})"
            ) from exc
        except BotoCoreError as exc:
            raise LakeStorageError(f"{self._where()}, s3://{self.bucket}/{key}: {exc}") from exc


def _check(*names: str) -> None:
    """Each name one plain key segment (no "/", "..", hidden or empty name), so keys built from them
    stay where they are meant to be; ids come from the database, but a bug upstream must not reach
    another batch or tenant."""
    if not all(plain_name(n) for n in names):
        raise LakePathError(f"'{'/'.join(names)[:200]}' is not a place in the lake")


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class _Body(io.RawIOBase):
    """An S3 response body as a raw stream whose failures are LakeStorageError."""

    def __init__(self, lake: S3Lake, body: Any, key: str) -> None:
        super().__init__()
        self._lake = lake
        self._body = body
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with self._lake._errors(self._key):
            data: bytes = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()

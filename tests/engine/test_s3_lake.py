"""The Lake contract, run against a local lake and an S3 lake on a real S3-compatible server (moto).

Both must: read back exactly what a committed batch holds; never show an upload or staging folder
no commit made the batch; delete nothing but a batch's diagnostics when asked to; refuse any path
or name that would leave its batch. The S3 lake's own concerns follow: multipart uploads and
streamed reads, pending uploads for retention, storage errors, and the settings that choose it.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import SecretStr, ValidationError

from flowservice.engine.lake import BatchPlace, Lake, LakePathError, LocalLake, StagedBatch
from flowservice.engine.s3_lake import LakeStorageError, S3Lake
from flowservice.services.context import open_lake
from flowservice.settings import Settings

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYLAKEKEY"
PLACE = BatchPlace("ORG@AdobeOrg", "prod", "ds1", "01BATCH")
BATCH = {
    "part-00000.parquet": b"P" * 1000,
    "part-00001.parquet": b"Q" * 10,
    "input_files": b'{"files": []}',
    "row_errors/part-00000.json": b"1" * 100,
    "row_errors/part-00001.json": b"2" * 10,
    "row_error_samples.json": b"3" * 7,
}
DIAGNOSTICS_BYTES = 117


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=SECRET,
    )


def s3_lake(endpoint: str, bucket: str, scratch: Path, **options: Any) -> S3Lake:
    return S3Lake(
        bucket,
        "lake/root",
        scratch=scratch,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="AKIAEXAMPLE",
        secret_access_key=SECRET,
        path_style=True,
        **options,
    )


@pytest.fixture
def new_bucket(s3_server: str) -> str:
    name = f"lake-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    if request.param == "local":
        made: Lake = LocalLake(tmp_path / "lake")
    else:
        server: str = request.getfixturevalue("s3_server")
        made = s3_lake(server, request.getfixturevalue("new_bucket"), tmp_path / "scratch")
    yield made
    made.close()


def stage(lake: Lake, files: dict[str, bytes], place: BatchPlace = PLACE, attempt: str = "1") -> StagedBatch:
    staged = lake.batch_staging(place, "run-1", attempt)
    for name, data in files.items():
        (staged.path / name).parent.mkdir(parents=True, exist_ok=True)
        (staged.path / name).write_bytes(data)
    return staged


def commit(lake: Lake, staged: StagedBatch) -> BatchPlace:
    """What services/execution.py does around its fenced transaction, when the row is written."""
    place = lake.publish(staged)
    lake.commit(staged, place)
    lake.settle(staged, place, committed=True)
    return place


def read(lake: Lake, place: BatchPlace, relative: str) -> bytes:
    with lake.open(place, relative) as handle:
        return handle.read()


def test_a_committed_batch_reads_back_whole(lake: Lake) -> None:
    staged = stage(lake, BATCH)
    place = commit(lake, staged)

    assert not staged.path.exists()  # the local staging is gone either way
    assert [(f.path, f.size) for f in lake.files(place)] == sorted((k, len(v)) for k, v in BATCH.items())
    assert [f.path for f in lake.files(place, "row_errors")] == [
        "row_errors/part-00000.json",
        "row_errors/part-00001.json",
    ]
    assert [(f.path, f.size) for f in lake.files(place, "input_files")] == [("input_files", 13)]
    assert lake.files(place, "row_err") == [] and lake.files(place, "absent") == []
    for name, data in BATCH.items():
        assert read(lake, place, name) == data
    assert read(lake, place, "./row_errors//part-00001.json") == b"2" * 10
    assert lake.exists(place, "") and lake.is_folder(place, "")
    assert lake.exists(place, "row_errors") and lake.is_folder(place, "row_errors")
    assert lake.exists(place, "input_files") and not lake.is_folder(place, "input_files")
    assert not lake.exists(place, "absent") and not lake.is_folder(place, "absent")
    with pytest.raises(OSError):
        read(lake, place, "absent")
    with pytest.raises(OSError):
        read(lake, place, "row_errors")  # a folder is not a file


def test_an_upload_no_commit_named_is_never_seen(lake: Lake) -> None:
    crashed = stage(lake, {"part-00000.parquet": b"crashed", "stray.parquet": b"x"}, attempt="1")
    lake.publish(crashed)  # then the worker died: nothing settled
    fenced = stage(lake, {"part-00000.parquet": b"fenced"}, attempt="2")
    fenced_place = lake.publish(fenced)
    lake.settle(fenced, fenced_place, committed=False)  # its transaction found the lease lost
    place = commit(lake, stage(lake, {"part-00000.parquet": b"winner", "input_files": b"{}"}, attempt="3"))

    assert [f.path for f in lake.files(place)] == ["input_files", "part-00000.parquet"]
    assert read(lake, place, "part-00000.parquet") == b"winner"
    assert not lake.exists(place, "stray.parquet")
    if isinstance(lake, S3Lake):
        assert not lake.exists(fenced_place, "part-00000.parquet")  # deleted when it was settled
        assert lake.files(BatchPlace(PLACE.org, PLACE.sandbox, PLACE.dataset_id, PLACE.batch_id)) == []


def test_remove_diagnostics_deletes_only_the_two_names(lake: Lake) -> None:
    place = commit(lake, stage(lake, {**BATCH, "row_errors_notes.json": b"keep"}))
    other = commit(
        lake, stage(lake, BATCH, BatchPlace(PLACE.org, PLACE.sandbox, PLACE.dataset_id, "02OTHER"))
    )

    assert lake.remove_diagnostics(place) == DIAGNOSTICS_BYTES
    assert [f.path for f in lake.files(place)] == [
        "input_files",
        "part-00000.parquet",
        "part-00001.parquet",
        "row_errors_notes.json",
    ]
    assert len(lake.files(other)) == len(BATCH)  # the other batch is untouched
    assert lake.remove_diagnostics(place) is None  # nothing left to remove
    assert (
        lake.remove_diagnostics(BatchPlace(PLACE.org, PLACE.sandbox, PLACE.dataset_id, "absent", "1")) is None
    )
    for bad in ("..", ".staging", "a/b", ""):
        with pytest.raises(LakePathError):
            lake.remove_diagnostics(BatchPlace(PLACE.org, PLACE.sandbox, PLACE.dataset_id, bad, "1"))
    with pytest.raises(LakePathError):
        lake.remove_diagnostics(BatchPlace("..", PLACE.sandbox, PLACE.dataset_id, PLACE.batch_id))


def test_paths_cannot_leave_their_batch(lake: Lake) -> None:
    place = commit(lake, stage(lake, BATCH))
    commit(lake, stage(lake, BATCH, BatchPlace(PLACE.org, PLACE.sandbox, PLACE.dataset_id, "02OTHER")))
    for bad in ("../02OTHER/input_files", "row_errors/../../02OTHER/input_files", "..", "a\x00b"):
        with pytest.raises(LakePathError):
            lake.open(place, bad)
        with pytest.raises(LakePathError):
            lake.files(place, bad)
        with pytest.raises(LakePathError):
            lake.is_folder(place, bad)
        assert not lake.exists(place, bad)
    for name in ("..", "a/b", ".hidden", ""):
        with pytest.raises(LakePathError):
            lake.batch_staging(BatchPlace(PLACE.org, PLACE.sandbox, name, PLACE.batch_id), "run-1", "1")
        with pytest.raises(LakePathError):
            lake.batch_staging(PLACE, "run-1", name)
    if isinstance(lake, S3Lake):  # the attempt is a key segment there: a crafted one is refused too
        with pytest.raises(LakePathError):
            lake.files(BatchPlace(PLACE.org, PLACE.sandbox, PLACE.dataset_id, PLACE.batch_id, ".."))


def test_the_retention_mark_is_kept(lake: Lake) -> None:
    assert lake.diagnostics_purged_before() == 0
    lake.set_diagnostics_purged_before(1_700_000_000_000)
    assert lake.diagnostics_purged_before() == 1_700_000_000_000


def test_s3_pending_uploads_are_listed_until_settled(s3_server: str, new_bucket: str, tmp_path: Path) -> None:
    lake = s3_lake(s3_server, new_bucket, tmp_path)
    crashed = lake.publish(stage(lake, {"part-00000.parquet": b"c" * 5, "input_files": b"{}"}, attempt="1"))
    committed_unsettled = lake.publish(stage(lake, {"part-00000.parquet": b"w"}, attempt="2"))
    place = commit(lake, stage(lake, {"part-00000.parquet": b"settled"}, attempt="3"))
    far = 2**62

    assert lake.pending_uploads(PLACE.org, PLACE.sandbox, 0) == []  # none began before the epoch
    pending = {p.place.attempt: p for p in lake.pending_uploads(PLACE.org, PLACE.sandbox, far)}
    assert set(pending) == {crashed.attempt, committed_unsettled.attempt}  # settled ones say nothing
    assert all(p.run_id == "run-1" and p.place.batch_id == PLACE.batch_id for p in pending.values())

    assert lake.remove_upload(pending[crashed.attempt], committed=False) == 7
    assert lake.remove_upload(pending[committed_unsettled.attempt], committed=True) == 0
    assert lake.pending_uploads(PLACE.org, PLACE.sandbox, far) == []
    assert lake.files(crashed) == []
    assert read(lake, committed_unsettled, "part-00000.parquet") == b"w"  # a committed upload stays
    assert read(lake, place, "part-00000.parquet") == b"settled"
    keys = [o["Key"] for o in s3_client(s3_server).list_objects_v2(Bucket=new_bucket)["Contents"]]
    assert all(
        k.startswith("lake/root/ORG@AdobeOrg/prod/datasets/ds1/batches/01BATCH/.attempts/") for k in keys
    )
    lake.close()


def test_s3_large_files_go_in_parts_and_come_back_streamed(
    s3_server: str, new_bucket: str, tmp_path: Path
) -> None:
    part = 5 * 2**20  # S3's smallest part
    lake = s3_lake(s3_server, new_bucket, tmp_path, multipart_bytes=part)
    data = os.urandom(2 * part + 12345)
    place = commit(lake, stage(lake, {"part-00000.parquet": data}))

    key = f"lake/root/ORG@AdobeOrg/prod/datasets/ds1/batches/01BATCH/.attempts/{place.attempt}/part-00000.parquet"
    etag = s3_client(s3_server).head_object(Bucket=new_bucket, Key=key)["ETag"]
    assert etag.strip('"').endswith("-3")  # a multipart upload of three parts
    digest, chunks = hashlib.sha256(), 0
    with lake.open(place, "part-00000.parquet") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            chunks += 1
    assert digest.digest() == hashlib.sha256(data).digest() and chunks == 11
    lake.close()


def test_s3_storage_errors_name_the_place_not_the_secret(s3_server: str, tmp_path: Path) -> None:
    lake = s3_lake(s3_server, "no-such-bucket-here", tmp_path)
    staged = stage(lake, {"input_files": b"{}"})
    with pytest.raises(LakeStorageError) as caught:
        lake.publish(staged)
    assert "no-such-bucket-here" in str(caught.value) and "NoSuchBucket" in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in repr(lake)
    with pytest.raises(OSError):  # retention and export handle it as any storage failure
        lake.remove_diagnostics(BatchPlace(PLACE.org, PLACE.sandbox, PLACE.dataset_id, PLACE.batch_id, "1"))
    lake.close()


def test_settings_choose_and_check_the_lake(s3_server: str, new_bucket: str, tmp_path: Path) -> None:
    local = Settings.load(home=tmp_path / "a", lake_url=f"file://{tmp_path}/lake")
    assert isinstance(open_lake(local), LocalLake) and local.lake_url == f"{tmp_path}/lake"
    assert isinstance(open_lake(Settings.load(home=tmp_path / "b")), LocalLake)

    settings = Settings.load(
        home=tmp_path / "c",
        lake_url=f"s3://{new_bucket}/some/prefix/",
        s3_endpoint_url=s3_server,
        s3_region="us-east-1",
        s3_access_key_id="AKIAEXAMPLE",
        s3_secret_access_key=SECRET,
        s3_path_style=True,
    )
    assert settings.s3_lake == (new_bucket, "some/prefix") and SECRET not in repr(settings)
    lake = open_lake(settings)
    assert isinstance(lake, S3Lake) and lake.prefix == "some/prefix/"
    assert lake.scratch.root == settings.home / "lake-scratch"
    lake.set_diagnostics_purged_before(5)  # it reaches the bucket with the settings' credentials
    assert lake.diagnostics_purged_before() == 5
    lake.close()

    refused = {
        "gs://bucket/x": "the scheme 'gs' is not supported",
        "s3:///prefix": "names no bucket",
        "s3://Not_A_Bucket/x": "is not an S3 bucket name",
        "s3://bucket/a/../b": "'..' segments",
    }
    for url, message in refused.items():
        with pytest.raises(ValidationError, match=message):
            Settings(lake_url=url)
    with pytest.raises(ValidationError, match="is not an http"):
        Settings(s3_endpoint_url="127.0.0.1:9000")
    with pytest.raises(ValidationError, match="go together") as caught:
        Settings(s3_secret_access_key=SecretStr(SECRET))
    assert SECRET not in str(caught.value)

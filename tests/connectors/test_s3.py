"""The S3 connector against a real S3-compatible HTTP server (moto), with real buckets and objects."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from flowservice import catalog
from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    PathNotAllowed,
    SourceRefused,
    SourceUnreachable,
)
from flowservice.connectors.registry import file_source
from flowservice.connectors.s3 import S3Source, region_for

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLE-SESSION-TOKEN"


@pytest.fixture
def client(s3_server: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=SECRET,
    )


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def params(url: str, **extra: str) -> dict[str, Any]:
    return {"s3AccessKey": "AKIAEXAMPLE", "s3SecretKey": SECRET, "serviceUrl": url, **extra}


@pytest.fixture
def source(s3_server: str) -> Iterator[Callable[..., S3Source]]:
    made: list[S3Source] = []

    def make(**extra: str) -> S3Source:
        made.append(S3Source(params(s3_server, **extra)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def put(client: Any, bucket: str, *keys: str) -> None:
    for key in keys:
        client.put_object(
            Bucket=bucket, Key=key, Body=b"" if key.endswith("/") else f"data of {key}\n".encode()
        )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_region_comes_from_an_aws_endpoint_only() -> None:
    assert region_for("https://s3.eu-west-1.amazonaws.com") == "eu-west-1"
    assert region_for("https://s3-ap-southeast-2.amazonaws.com/") == "ap-southeast-2"
    assert region_for("https://s3.amazonaws.com") == "us-east-1"
    assert region_for("http://127.0.0.1:9000") == "us-east-1"
    assert region_for("https://minio.example.com") == "us-east-1"
    assert region_for(None) == "us-east-1"


def test_first_segment_is_the_bucket(source: Callable[..., S3Source], client: Any, bucket: str) -> None:
    put(client, bucket, "in/b.csv", "in/a.csv", "in/sub/c.csv", "in/empty/", "top.csv")
    s3 = source()
    s3.test()

    [one] = s3.list(f"/{bucket}/in/a.csv")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="in/a.csv")["Contents"][0]
    assert one.path == f"/{bucket}/in/a.csv"
    assert one.size == len(b"data of in/a.csv\n")
    assert one.modified_ms == int(listed["LastModified"].timestamp() * 1000)

    assert [o.path for o in s3.list(f"{bucket}/in")] == [f"/{bucket}/in/a.csv", f"/{bucket}/in/b.csv"]
    assert [o.path for o in s3.list(f"/{bucket}/in/", recursive=True)] == [
        f"/{bucket}/in/a.csv",
        f"/{bucket}/in/b.csv",
        f"/{bucket}/in/sub/c.csv",
    ]
    assert [o.path for o in s3.list(f"/{bucket}")] == [f"/{bucket}/top.csv"]
    assert [o.path for o in s3.list(f"/{bucket}/in/empty")] == []  # a folder marker: exists, holds nothing
    with s3.open(one.path) as stream:
        assert stream.read() == b"data of in/a.csv\n"


def test_bucket_name_restricts_and_paths_are_relative(
    source: Callable[..., S3Source], client: Any, bucket: str
) -> None:
    put(client, bucket, "in/a.csv", "in/sub/c.csv", "top.csv")
    s3 = source(bucketName=bucket)
    s3.test()
    assert [o.path for o in s3.list("/in", recursive=True)] == ["/in/a.csv", "/in/sub/c.csv"]
    assert [o.path for o in s3.list("")] == ["/top.csv"]
    with s3.open("/in/sub/c.csv") as stream:
        assert stream.read() == b"data of in/sub/c.csv\n"


def test_folder_path_is_a_prefix_that_cannot_be_left(
    source: Callable[..., S3Source], client: Any, bucket: str
) -> None:
    put(
        client, bucket, "restricted/area/a.csv", "restricted/area/deep/b.csv", "restricted/other.csv", "x.csv"
    )
    s3 = source(bucketName=bucket, folderPath="/restricted/area/")
    s3.test()
    assert [o.path for o in s3.list("/", recursive=True)] == ["/a.csv", "/deep/b.csv"]
    assert [o.path for o in s3.list("deep")] == ["/deep/b.csv"]
    assert s3.explore() == [ExploreItem("folder", "deep", "/deep"), ExploreItem("file", "a.csv", "/a.csv")]
    with s3.open("/a.csv") as stream:
        assert stream.read() == b"data of restricted/area/a.csv\n"
    for path in ("../other.csv", "/../../x.csv", "deep/./b.csv"):
        with pytest.raises(PathNotAllowed):
            s3.open(path)
        with pytest.raises(PathNotAllowed):
            s3.list(path)
    with pytest.raises(ObjectMissing):
        s3.open("/other.csv")


def test_explore(source: Callable[..., S3Source], client: Any, bucket: str) -> None:
    put(client, bucket, "in/a.csv", "in/sub/c.csv", "in/sub2/", "top.csv")
    s3 = source()
    assert ExploreItem("folder", bucket, f"/{bucket}") in s3.explore()
    assert s3.explore(f"/{bucket}") == [
        ExploreItem("folder", "in", f"/{bucket}/in"),
        ExploreItem("file", "top.csv", f"/{bucket}/top.csv"),
    ]
    assert s3.explore(f"/{bucket}/in/") == [
        ExploreItem("folder", "sub", f"/{bucket}/in/sub"),
        ExploreItem("folder", "sub2", f"/{bucket}/in/sub2"),
        ExploreItem("file", "a.csv", f"/{bucket}/in/a.csv"),
    ]
    assert s3.explore(f"/{bucket}/in/sub2") == []
    with pytest.raises(ObjectMissing):
        s3.explore(f"/{bucket}/nothing-here")
    restricted = source(bucketName=bucket).explore("in")
    assert [(i.type, i.path) for i in restricted] == [
        ("folder", "/in/sub"),
        ("folder", "/in/sub2"),
        ("file", "/in/a.csv"),
    ]


def test_listings_follow_every_page(s3_server: str, client: Any, bucket: str) -> None:
    keys = [f"many/f{i:02d}.csv" for i in range(10)] + [f"many/d{i}/x.csv" for i in range(4)]
    put(client, bucket, *keys)
    s3 = S3Source(params(s3_server, bucketName=bucket), page_size=3)
    assert [o.path for o in s3.list("many")] == [f"/many/f{i:02d}.csv" for i in range(10)]
    assert len(list(s3.list("many", recursive=True))) == 14
    assert [i.name for i in s3.explore("many")] == [
        *(f"d{i}" for i in range(4)),
        *(f"f{i:02d}.csv" for i in range(10)),
    ]
    s3.close()


def test_missing_bucket_and_key(source: Callable[..., S3Source], bucket: str) -> None:
    absent = f"absent-{uuid.uuid4().hex[:12]}"
    s3 = source()
    for call in (
        lambda: list(s3.list(f"/{absent}/a.csv")),
        lambda: s3.open(f"/{absent}/a.csv"),
        lambda: s3.explore(f"/{absent}"),
        lambda: source(bucketName=absent).test(),
        lambda: s3.open(f"/{bucket}/no-such-key.csv"),
        lambda: list(s3.list(f"/{bucket}/no-such-folder")),
        lambda: s3.open(f"/{bucket}"),
        lambda: list(s3.list("/")),
    ):
        with pytest.raises(ObjectMissing) as caught:
            call()
        assert SECRET not in str(caught.value)


def test_unreachable_endpoint_fails_fast_and_retryably() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    s3 = S3Source(params(url, bucketName="b") | {"s3SessionToken": TOKEN})
    started = time.monotonic()
    for call in (s3.test, lambda: list(s3.list("a.csv")), lambda: s3.open("a.csv"), lambda: s3.explore()):
        with pytest.raises(SourceUnreachable) as caught:
            call()
        message = str(caught.value)
        assert url in message and "'b'" in message
        assert SECRET not in message and TOKEN not in message
    assert time.monotonic() - started < 20
    s3.close()


def test_a_large_object_streams_in_chunks(source: Callable[..., S3Source], client: Any, bucket: str) -> None:
    payload = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)
    client.put_object(Bucket=bucket, Key="big.bin", Body=payload)
    s3 = source(bucketName=bucket)
    [obj] = s3.list("big.bin")
    assert obj.size == len(payload) == 20 * 1024 * 1024
    digest = hashlib.sha256()
    chunks = 0
    with s3.open("/big.bin") as stream:
        while chunk := stream.read(1024 * 1024):
            assert len(chunk) <= 1024 * 1024
            digest.update(chunk)
            chunks += 1
    assert chunks == 20
    assert digest.digest() == hashlib.sha256(payload).digest()


def test_credentials_are_required_and_never_shown(s3_server: str) -> None:
    with pytest.raises(SourceRefused, match="s3SecretKey"):
        S3Source({"s3AccessKey": "AKIAEXAMPLE", "serviceUrl": s3_server})
    with pytest.raises(SourceRefused, match="serviceUrl"):
        S3Source(params("not a url"))
    s3 = S3Source(params(s3_server, bucketName="b") | {"s3SessionToken": TOKEN})
    assert SECRET not in repr(s3) and TOKEN not in repr(s3)
    s3.close()


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"echo {SECRET}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("NoSuchBucket", 404, ObjectMissing),
        ("NoSuchKey", 404, ObjectMissing),
        ("404", 404, ObjectMissing),
        ("AccessDenied", 403, SourceRefused),
        ("InvalidAccessKeyId", 403, SourceRefused),
        ("SignatureDoesNotMatch", 403, SourceRefused),
        ("ExpiredToken", 400, SourceRefused),
        ("InvalidBucketName", 400, SourceRefused),
        ("InternalError", 500, SourceUnreachable),
        ("SlowDown", 503, SourceUnreachable),
        ("Whatever", 502, SourceUnreachable),
    ],
)
def test_error_codes_map_to_kinds(s3_server: str, code: str, status: int, kind: type[ConnectorError]) -> None:
    # moto accepts any credentials, so the refusals are checked on the errors botocore would raise.
    s3 = S3Source(params(s3_server))
    error = s3._error(client_error(code, status), "b", "k")
    assert type(error) is kind
    assert "'b'" in str(error) and "'k'" in str(error) and code in str(error)
    assert SECRET not in str(error)
    s3.close()


def test_the_registry_makes_s3_sources_and_imports_boto3_only_then(s3_server: str, tmp_path: Any) -> None:
    s3 = file_source(catalog.AMAZON_S3, params(s3_server), landing_zone_root=None)
    assert isinstance(s3, S3Source)
    s3.close()
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from flowservice import catalog\n"
        "from flowservice.connectors.registry import file_source\n"
        f"file_source(catalog.DATA_LANDING_ZONE, {{}}, landing_zone_root=Path({str(tmp_path)!r}))\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

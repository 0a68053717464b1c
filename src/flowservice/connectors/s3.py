"""Amazon S3, or any S3-compatible server (MinIO, Ceph, moto), as a file source.

boto3 is imported when an S3Source is made, not when this package is, so a server that never reads
S3 never pays for it (the registry imports this module lazily too).

Addressing: `serviceUrl` is the endpoint; requests use path-style addressing so an endpoint on a
loopback address or behind a plain hostname works without bucket DNS names. The region is read from
an `s3.{region}.amazonaws.com` URL and is "us-east-1" otherwise (what S3-compatible servers expect).

Paths follow Adobe: with `bucketName` set the connection is restricted to that bucket (and to the
`folderPath` prefix inside it), and paths are relative to that place: "/folder/file.csv". Without
`bucketName` the first segment of a path is the bucket: "/bucket/folder/file.csv", and exploring
the root lists the buckets. Paths handed back (listings, explore) have the same shape, with a
leading "/", so they can be passed back unchanged. ".." segments are refused so a path cannot
climb out of `folderPath`.

Failures become the connector errors of base.py, decided by error code and status, never by text:
network errors, timeouts and 5xx are SourceUnreachable (retry), 401/403 and credential errors are
SourceRefused, missing buckets and keys are ObjectMissing. Timeouts are short (connect 5 s, read
60 s) and botocore retries once, because the engine already retries Transient failures and an
unreachable endpoint should fail a run quickly. Messages name the endpoint, bucket and key; the
secret key and session token are scrubbed from anything a server might echo back.

Logs: botocore's DEBUG output holds every signed request (the session token travels in a header and
is printed in the canonical request) and every answer (which a hostile endpoint can fill with what it
was sent). So the first S3 source made caps the `botocore` and `boto3` loggers at INFO, unless a level
was set for them explicitly: turning the root logger to DEBUG must not write tenants' credentials into
the log. An operator who sets `botocore` to DEBUG by name still gets what they asked for.

Addresses: a `serviceUrl` host is resolved and checked against the outbound policy (egress.py) each
time a source is made, before boto3 is given it: one that resolves to a link-local or cloud metadata
address (the instance's own credentials live there) is SourceRefused. boto3 resolves the name again
when it connects, so a name re-pointed within one source's life is not caught; see egress.py.
"""

from __future__ import annotations

import builtins
import io
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO, NoReturn
from urllib.parse import urlsplit

from flowservice import egress as outbound
from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    PathNotAllowed,
    SourceObject,
    SourceRefused,
    SourceUnreachable,
)

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 2  # the first try and one retry
CHUNK = 1024 * 1024

_AWS_HOST = re.compile(r"s3[.-](?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?")

_MISSING = {"NoSuchBucket", "NoSuchKey", "NotFound", "404"}
_REFUSED = {
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
    "403",
}
_UNAVAILABLE = {"InternalError", "RequestTimeout", "ServiceUnavailable", "SlowDown", "Throttling"}
CHATTY_LOGGERS = ("botocore", "boto3")  # their DEBUG records carry request headers and answers


def _quiet_library_debug() -> None:
    """Cap the AWS libraries' loggers at INFO unless their level was chosen explicitly (see Logs)."""
    for name in CHATTY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def region_for(service_url: str | None) -> str:
    """The region named by an AWS endpoint such as https://s3.eu-west-1.amazonaws.com, else us-east-1."""
    host = urlsplit(service_url).hostname if service_url else None
    match = _AWS_HOST.fullmatch(host or "")
    return match.group(1) if match else "us-east-1"


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class S3Source:
    """Files in S3 buckets, reached with an access key (and optional session token).

    `page_size` is the number of keys asked for per listing request (S3 answers at most 1000).
    """

    def __init__(
        self, params: dict[str, Any], *, page_size: int = 1000, egress: outbound.Egress | None = None
    ) -> None:
        import boto3
        from botocore.config import Config

        _quiet_library_debug()
        access_key = params.get("s3AccessKey")
        secret_key = params.get("s3SecretKey")
        token = params.get("s3SessionToken") or None
        # Without both, boto3 would fall back to the server's own credentials: never lend those.
        if not access_key or not secret_key:
            raise SourceRefused("an S3 connection needs both s3AccessKey and s3SecretKey")
        self.page_size = page_size
        self._secrets = [s for s in (str(secret_key), str(token) if token else "") if s]
        self.endpoint: str | None = params.get("serviceUrl") or None
        self.bucket: str | None = str(params.get("bucketName") or "").strip("/") or None
        folder = str(params.get("folderPath") or "").strip("/")
        self.prefix = f"{folder}/" if folder and self.bucket else ""
        if folder and not self.bucket:
            raise ObjectMissing("an S3 connection with folderPath needs bucketName too")
        if self.prefix:
            _check_segments(folder)
        if self.endpoint:
            _check_endpoint(self.endpoint, egress or outbound.DEFAULT)
        config = Config(
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path"},
            signature_version="s3v4",
        )
        try:
            # A session of our own: the module-level default session is shared and not thread-safe.
            session = boto3.session.Session()
            self._client = session.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=region_for(self.endpoint),
                aws_access_key_id=str(access_key),
                aws_secret_access_key=str(secret_key),
                aws_session_token=str(token) if token else None,
                config=config,
            )
        except ValueError as exc:
            raise SourceRefused(f"S3 serviceUrl {self.endpoint!r} is not a usable endpoint URL") from exc
        except Exception as exc:
            raise self._error(exc, None, None) from exc

    def __repr__(self) -> str:
        return f"S3Source(endpoint={self._where()!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    # -- paths ---------------------------------------------------------------------------------------

    def _locate(self, path: str | None) -> tuple[str | None, str]:
        """(bucket, key) for a connection path; the bucket is None only at the root of all buckets."""
        text = (path or "").lstrip("/")
        if "\x00" in text:
            raise PathNotAllowed(f"S3 path {path!r} contains a NUL byte")
        _check_segments(text)
        if self.bucket:
            return self.bucket, self.prefix + text
        bucket, _, key = text.partition("/")
        return bucket or None, key

    def _path(self, bucket: str, key: str) -> str:
        """The connection path of an object or folder key (the inverse of _locate)."""
        rel = key[len(self.prefix) :] if self.bucket else f"{bucket}/{key}"
        return "/" + rel.rstrip("/")

    def _need_bucket(self, bucket: str | None, path: str | None) -> str:
        if bucket is None:
            raise ObjectMissing(f"S3 path {path!r} names no bucket; write it as /bucket/folder/file")
        return bucket

    # -- errors --------------------------------------------------------------------------------------

    def _where(self) -> str:
        return self.endpoint or "AWS S3"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, exc: BaseException, bucket: str | None, key: str | None) -> ConnectorError:
        """The connector error for a botocore/network failure on `bucket`/`key`."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            IncompleteReadError,
            NoCredentialsError,
            ParamValidationError,
            PartialCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from urllib3.exceptions import HTTPError as URLLib3Error

        target = f"S3 at {self._where()}"
        if bucket:
            target += f", bucket {bucket!r}"
        if key:
            target += f", key {key!r}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
            detail = self._scrub(f"{code or 'error'} (HTTP {status or '?'})")
            if code in _MISSING or status == 404:
                return ObjectMissing(f"{target}: not found: {detail}")
            if code in _REFUSED or status in (401, 403):
                return SourceRefused(f"{target}: access refused: {detail}")
            if code in _UNAVAILABLE or status >= 500 or status == 429:
                return SourceUnreachable(f"{target}: server unavailable: {detail}")
            return SourceRefused(f"{target}: request rejected: {detail}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return SourceRefused(f"{target}: credentials are missing or incomplete")
        if isinstance(exc, ParamValidationError):
            return ObjectMissing(f"{target}: not a valid S3 bucket or key")
        if isinstance(exc, BotoConnectionError | HTTPClientError | IncompleteReadError | URLLib3Error):
            return SourceUnreachable(f"{target}: unreachable: {self._scrub(str(exc))}")
        if isinstance(exc, BotoCoreError | OSError):
            return SourceUnreachable(f"{target}: {type(exc).__name__}: {self._scrub(str(exc))}")
        return ConnectorError(f"{target}: {type(exc).__name__}: {self._scrub(str(exc))}")

    def _raise(self, exc: BaseException, bucket: str | None, key: str | None) -> NoReturn:
        raise self._error(exc, bucket, key) from exc

    # -- FileSource ----------------------------------------------------------------------------------

    def test(self) -> None:
        try:
            if self.bucket:
                self._client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
            else:
                self._client.list_buckets()
        except Exception as exc:
            self._raise(exc, self.bucket, self.prefix or None)

    def list(self, path: str, *, recursive: bool = False) -> Iterator[SourceObject]:
        bucket, key = self._locate(path)
        return self._list(self._need_bucket(bucket, path), key, recursive)

    def _list(self, bucket: str, key: str, recursive: bool) -> Iterator[SourceObject]:
        seen = False
        try:
            if key and not key.endswith("/"):
                # The exact key, if it exists, sorts first among the keys it prefixes.
                first = self._client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
                found = first.get("Contents") or []
                if found and found[0]["Key"] == key:
                    yield self._object(bucket, found[0])
                    return
                key += "/"
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket,
                Prefix=key,
                PaginationConfig={"PageSize": self.page_size},
                **({} if recursive else {"Delimiter": "/"}),
            )
            for page in pages:
                seen = seen or bool(page.get("Contents") or page.get("CommonPrefixes"))
                for item in page.get("Contents") or []:
                    if not item["Key"].endswith("/"):  # "folder/" keys are folder markers
                        yield self._object(bucket, item)
        except ConnectorError:
            raise
        except Exception as exc:
            self._raise(exc, bucket, key)
        if not seen and key:
            raise ObjectMissing(f"S3 at {self._where()}, bucket {bucket!r}: nothing at {key!r}")

    def _object(self, bucket: str, item: dict[str, Any]) -> SourceObject:
        return SourceObject(self._path(bucket, item["Key"]), int(item["Size"]), _ms(item["LastModified"]))

    def open(self, path: str) -> BinaryIO:
        bucket, key = self._locate(path)
        bucket = self._need_bucket(bucket, path)
        if not key or key.endswith("/"):
            raise ObjectMissing(f"S3 path {path!r} is a folder, not a file")
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            self._raise(exc, bucket, key)
        return io.BufferedReader(_Body(self, response["Body"], bucket, key), buffer_size=CHUNK)

    def explore(self, path: str | None = None) -> builtins.list[ExploreItem]:
        bucket, key = self._locate(path)
        if bucket is None:
            try:
                buckets = self._client.list_buckets().get("Buckets") or []
            except Exception as exc:
                self._raise(exc, None, None)
            return [ExploreItem("folder", b["Name"], "/" + b["Name"]) for b in buckets]
        prefix = key if not key or key.endswith("/") else key + "/"
        folders: builtins.list[ExploreItem] = []
        files: builtins.list[ExploreItem] = []
        seen = False
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": self.page_size}
            )
            for page in pages:
                for common in page.get("CommonPrefixes") or []:
                    seen = True
                    name = common["Prefix"][len(prefix) :].rstrip("/")
                    folders.append(ExploreItem("folder", name, self._path(bucket, common["Prefix"])))
                for item in page.get("Contents") or []:
                    seen = True
                    if item["Key"] != prefix and not item["Key"].endswith("/"):
                        name = item["Key"][len(prefix) :]
                        files.append(ExploreItem("file", name, self._path(bucket, item["Key"])))
        except Exception as exc:
            self._raise(exc, bucket, prefix or None)
        if not seen and prefix != self.prefix:
            raise ObjectMissing(f"S3 at {self._where()}, bucket {bucket!r}: no folder {prefix!r}")
        return folders + files

    def close(self) -> None:
        self._client.close()


def _check_endpoint(endpoint: str, policy: outbound.Egress) -> None:
    """Refuse an endpoint whose host resolves to a refused address (a name that does not resolve is
    left to boto3, which reports it as unreachable, so a DNS outage stays a retryable failure)."""

    try:
        parts = urlsplit(endpoint)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # boto3 refuses it with a clearer message
    if not host:
        return
    try:
        policy.resolve(host, port)
    except outbound.AddressNotAllowed as exc:
        raise SourceRefused(f"S3 serviceUrl: {exc}") from None
    except (OSError, UnicodeError, ValueError):
        return


def _check_segments(text: str) -> None:
    if any(part in ("..", ".") for part in text.split("/")):
        raise PathNotAllowed(f"S3 path {text!r} contains '.' or '..' segments")


class _Body(io.RawIOBase):
    """An S3 response body as a raw stream whose network failures are connector errors."""

    def __init__(self, source: S3Source, body: Any, bucket: str, key: str) -> None:
        super().__init__()
        self._source = source
        self._body = body
        self._bucket = bucket
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data: bytes = self._body.read(len(view))
        except Exception as exc:
            raise self._source._error(exc, self._bucket, self._key) from exc
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()

"""Settings: the only module that reads the environment.

Everything configurable is a `FLOWSERVICE_*` variable. `Settings.load()` also resolves the
derived values (database URL inside the home, the secret key file) so the rest of the code
never has to know where defaults come from.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
QUEUE_NEEDS_POSTGRES = (
    "FLOWSERVICE_QUEUE=postgres needs a PostgreSQL FLOWSERVICE_DATABASE_URL "
    "(postgresql://user:password@host:5432/dbname); SQLite serves the embedded queue only"
)


class Settings(BaseSettings):
    # errors name the setting and why, never its value: a model-level check would print them all
    model_config = SettingsConfigDict(env_prefix="FLOWSERVICE_", extra="ignore", hide_input_in_errors=True)

    home: Path = Field(default=Path("./.flowservice"), description="data directory")
    database_url: str = Field(default="", description="SQLAlchemy URL; default SQLite in the home")
    public_url: str = Field(default="http://127.0.0.1:8080", description="base of absolute links we emit")
    secret_key: SecretStr | None = Field(default=None, description="signs tokens, encrypts secrets")
    previous_secret_keys: SecretStr | None = Field(
        default=None,
        description="earlier secret keys, comma-separated: secrets sealed and tokens signed with them are "
        "still read until `flowservice secrets rotate` re-seals and the tokens expire",
    )
    token_ttl_seconds: int = Field(default=86_400, gt=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="larger request bodies get 413")
    lake_url: str = Field(
        default="", description="where datasets live: a folder, file:///folder or s3://bucket/prefix"
    )
    s3_endpoint_url: str = Field(default="", description="S3 endpoint of an s3:// lake; empty: AWS")
    s3_region: str = Field(default="", description="region of an s3:// lake; empty: the AWS settings")
    s3_access_key_id: str = Field(default="", description="key of an s3:// lake; empty: the AWS chain")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="its secret")
    s3_path_style: bool = Field(default=False, description="path-style S3 requests (MinIO, Ceph)")
    workers: int = Field(default=2, ge=0, description="run executors in the serve process (0: none)")
    queue: Literal["embedded", "postgres"] = Field(
        default="embedded",
        description="who dispatches runs: in-process workers, or procrastinate jobs on PostgreSQL "
        "executed by `flowservice worker` processes anywhere",
    )
    shutdown_timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        description="on SIGTERM a worker waits this long for runs in flight, then releases them",
    )
    scheduler: bool = Field(default=True, description="run the scheduler in the serve process")
    lease_seconds: float = Field(
        default=60.0, gt=0, description="a claimed run is re-queued after this silence"
    )
    poll_seconds: float = Field(default=1.0, gt=0, description="how often idle workers look for runs")
    max_file_bytes: int = Field(default=50 * 2**30, gt=0, description="largest source file a run accepts")
    max_files_per_run: int = Field(default=100_000, gt=0, description="most source files one run takes")
    max_decompressed_bytes: int = Field(
        default=50 * 2**30,
        gt=0,
        description="most bytes a compressed source file (gzip, bzip2, zip, compressed Parquet) may expand "
        "to; past it the file is refused as a possible zip bomb",
    )
    slice_files: int = Field(
        default=64, gt=0, description="a run with more staged files is promoted in slices by any worker"
    )
    slice_bytes: int = Field(
        default=256 * 2**20, gt=0, description="a run with more staged bytes is promoted in slices"
    )
    retry_backoff_seconds: float = Field(
        default=60.0, ge=0, description="first pause before a transient retry"
    )
    alert_retry_seconds: float = Field(
        default=30.0, ge=0, description="first pause before a failed webhook delivery is tried again"
    )
    alert_max_attempts: int = Field(
        default=8, ge=1, description="webhook attempts before a delivery is given up"
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a webhook must answer within this"
    )
    retention_run_days: int = Field(
        default=90, ge=1, description="finished runs and settled alert deliveries are purged after this"
    )
    retention_diagnostics_days: int = Field(
        default=30, ge=1, description="batches' failed-record diagnostics are purged after this"
    )
    retention_interval_seconds: float = Field(
        default=3600.0, gt=0, description="how often the retention purge runs"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="bearer token /metrics requires; unset: /metrics answers loopback clients only",
    )
    rate_limit_per_second: float = Field(
        default=0.0, ge=0, description="requests per second per client id (token bucket, per process); 0: off"
    )
    rate_limit_burst: int = Field(
        default=0, ge=0, description="requests a client may make at once; 0: the rate rounded up"
    )
    outbound_allowed_networks: str = Field(
        default="", description="CIDRs, comma-separated, that sources and webhooks may reach even if refused"
    )
    outbound_blocked_networks: str = Field(
        default="", description="CIDRs, comma-separated, refused besides link-local and metadata addresses"
    )
    test_connectors: bool = Field(default=False, description="offer the dummy connector (for tests)")
    hang_at: str = Field(default="", description="test fault injection: an engine checkpoint to stop at")

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("outbound_allowed_networks", "outbound_blocked_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        from flowservice.egress import parse_networks

        parse_networks(value)  # a typo must stop the start, not silently open or close the guard
        return value

    @field_validator("lake_url")
    @classmethod
    def _lake_url(cls, value: str) -> str:
        """A folder, `file://…` (made a folder) or `s3://bucket/prefix` (normalised: no slashes at
        the ends of the prefix); anything else is refused here, before a run could fail on it."""
        value = value.strip()
        scheme, sep, rest = value.partition("://")
        if not sep:
            return value  # a folder
        scheme = scheme.lower()
        if scheme == "file":
            parts = urlsplit(value)
            if parts.netloc not in ("", "localhost") or not parts.path:
                raise ValueError(f"FLOWSERVICE_LAKE_URL {value!r}: write a local folder as file:///path")
            return unquote(parts.path)
        if scheme != "s3":
            raise ValueError(
                f"FLOWSERVICE_LAKE_URL {value!r}: the lake is a folder, file:///folder or "
                f"s3://bucket/prefix; the scheme {scheme!r} is not supported"
            )
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ValueError(f"FLOWSERVICE_LAKE_URL {value!r} names no bucket: write s3://bucket/prefix")
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(
                f"FLOWSERVICE_LAKE_URL {value!r}: {bucket!r} is not an S3 bucket name "
                "(3-63 lowercase letters, digits, dots and hyphens)"
            )
        prefix = prefix.strip("/")
        if prefix and any(p in ("", ".", "..") or "\x00" in p for p in prefix.split("/")):
            raise ValueError(
                f"FLOWSERVICE_LAKE_URL {value!r}: the prefix may not have empty, '.' or '..' segments"
            )
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"FLOWSERVICE_S3_ENDPOINT_URL {value!r} is not an http(s)://host[:port] URL")
        return value

    @model_validator(mode="after")
    def _s3_credentials(self) -> Settings:
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ValueError(
                "FLOWSERVICE_S3_ACCESS_KEY_ID and FLOWSERVICE_S3_SECRET_ACCESS_KEY go together: "
                "set both, or neither to use the standard AWS credentials"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str) -> str:
        # Users paste libpq-style URLs; SQLAlchemy would pick psycopg2 for them, which we do not ship.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @model_validator(mode="after")
    def _postgres_queue_needs_postgres(self) -> Settings:
        # The jobs live in the database the runs live in: enqueueing shares the run's transaction.
        if self.queue == "postgres" and not self.database_url.startswith("postgresql"):
            raise ValueError(QUEUE_NEEDS_POSTGRES)
        return self

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Read the environment (plus explicit overrides) and resolve the defaults that live in the home."""
        settings = cls(**overrides)  # type: ignore[arg-type]
        return settings.resolved()

    def resolved(self) -> Settings:
        home = self.home.expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
        database_url = self.database_url or f"sqlite:///{home / 'flowservice.db'}"
        secret_key = self.secret_key or SecretStr(_load_or_create_secret_key(home))
        lake_url = self.lake_url or str(home / "lake")
        return self.model_copy(
            update={
                "home": home,
                "database_url": database_url,
                "secret_key": secret_key,
                "lake_url": lake_url,
            }
        )

    @property
    def landing_zone(self) -> Path:
        return self.home / "landing-zone"

    @property
    def secret(self) -> bytes:
        if self.secret_key is None:
            raise RuntimeError("Settings.resolved() must run before the secret key is used")
        return self.secret_key.get_secret_value().encode()

    @property
    def previous_secrets(self) -> tuple[bytes, ...]:
        """The earlier keys, newest first as listed: they open and verify, never seal or sign."""
        if self.previous_secret_keys is None:
            return ()
        listed = self.previous_secret_keys.get_secret_value().split(",")
        return tuple(key.strip().encode() for key in listed if key.strip())

    @property
    def s3_lake(self) -> tuple[str, str] | None:
        """(bucket, prefix) of an s3:// lake; None for a lake in a folder."""
        if not self.lake_url.startswith("s3://"):
            return None
        bucket, _, prefix = self.lake_url.removeprefix("s3://").partition("/")
        return bucket, prefix

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _load_or_create_secret_key(home: Path) -> str:
    """Generate the key once, readable by the owner only, so restarts keep tokens and secrets valid."""
    path = home / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    tmp = home / f".{SECRET_KEY_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(tmp, path)  # atomic and refuses to overwrite: two first starts agree on one key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()

"""Settings: the only module that reads the environment.

Everything configurable is a `FLOWSERVICE_*` variable. `Settings.load()` also resolves the
derived values (database URL inside the home, the secret key file) so the rest of the code
never has to know where defaults come from.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWSERVICE_", extra="ignore")

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
    lake_url: str = Field(default="", description="where datasets live; default a folder in the home")
    workers: int = Field(default=2, ge=0, description="run executors in the serve process (0: none)")
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

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str) -> str:
        # Users paste libpq-style URLs; SQLAlchemy would pick psycopg2 for them, which we do not ship.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

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

"""What every use case needs, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flowservice import catalog
from flowservice.domain.clock import SYSTEM_CLOCK, Clock
from flowservice.engine.lake import Lake, LocalLake
from flowservice.services.crypto import SecretBox
from flowservice.services.tokens import TokenSigner
from flowservice.settings import Settings
from flowservice.store.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: catalog.Catalog
    box: SecretBox
    tokens: TokenSigner
    lake: Lake
    clock: Clock = field(default=SYSTEM_CLOCK)
    # called with a run id after a run is created: in-process workers wake up instead of polling
    run_listeners: list[Callable[[str], None]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Services:
        settings = settings.resolved()
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            catalog=catalog.with_test_connectors(catalog.load())
            if settings.test_connectors
            else catalog.load(),
            box=SecretBox(settings.secret, settings.previous_secrets),
            tokens=TokenSigner(settings.secret, settings.previous_secrets),
            lake=open_lake(settings),
            clock=clock,
        )

    def run_created(self, run_id: str) -> None:
        for listener in list(self.run_listeners):
            listener(run_id)

    def close(self) -> None:
        self.db.dispose()
        self.lake.close()


def open_lake(settings: Settings) -> Lake:
    """The lake the settings name: a folder, or an S3 bucket (boto3 is loaded only then), whose
    engine staging goes to `lake-scratch` in the home."""
    s3 = settings.s3_lake
    if s3 is None:
        return LocalLake(Path(settings.lake_url))
    from flowservice.engine.s3_lake import S3Lake

    secret = settings.s3_secret_access_key
    return S3Lake(
        *s3,
        scratch=settings.home / "lake-scratch",
        endpoint_url=settings.s3_endpoint_url or None,
        region=settings.s3_region or None,
        access_key_id=settings.s3_access_key_id or None,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        path_style=settings.s3_path_style,
    )

"""What every use case needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from flowservice import catalog
from flowservice.domain.clock import SYSTEM_CLOCK, Clock
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
    clock: Clock = field(default=SYSTEM_CLOCK)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> Services:
        settings = settings.resolved()
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            catalog=catalog.load(),
            box=SecretBox(settings.secret),
            tokens=TokenSigner(settings.secret),
            clock=clock,
        )

    def close(self) -> None:
        self.db.dispose()

"""Alembic environment: one migration tree for SQLite and PostgreSQL (batch mode for SQLite's ALTERs)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from flowservice.store.db import make_engine
from flowservice.store.migrate import ours
from flowservice.store.tables import Base

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=ours,  # procrastinate's tables are not our models
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `flowservice db upgrade`")
run_online()

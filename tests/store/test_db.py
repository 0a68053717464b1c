"""The PostgreSQL engine's session settings: what lets a partitioned worker's locks be freed."""

from __future__ import annotations

from sqlalchemy import text

from flowservice.store.db import Database
from tests.conftest import create_pg_database, drop_pg_database


def test_postgres_sessions_end_idle_transactions_and_keep_alive() -> None:
    url = create_pg_database()
    db = Database(url)
    try:
        with db.transaction() as session:
            timeout = session.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one()
            assert timeout == "2min"
            raw = session.connection().connection.dbapi_connection
            assert raw is not None
            params = raw.info.get_parameters()
            assert params.get("keepalives") == "1" and params.get("keepalives_idle") == "30"
    finally:
        db.dispose()
        drop_pg_database(url)

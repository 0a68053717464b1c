"""Engine and transactions for SQLite (the embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, writer: bool = True, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # A deferred BEGIN upgrades to a write lock mid-transaction and fails with SQLITE_BUSY when
        # another writer got there first; writers take the lock at BEGIN and queue on busy_timeout.
        # Readers keep a deferred BEGIN so that, under WAL, they never wait for a writer.
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
        return engine
    connect_args = {**POSTGRES_CONNECT_ARGS, **kwargs.pop("connect_args", {})}
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args, **kwargs
    )


# A process cut off from the server mid-transaction (a partition, a paused VM) would otherwise keep its
# row locks until TCP gives up, hours later; claims skip locked runs, so its run could not be taken
# over. The server ends such a transaction after two minutes (no transaction of ours idles that long:
# copies and promotions run outside transactions), and keepalives let both ends notice a dead peer.
POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "options": "-c idle_in_transaction_session_timeout=120000",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let the "begin" listener issue BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Owns the engine; services open one transaction per use case with `transaction()`."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.read_engine = (
            make_engine(url, writer=False, **engine_kwargs) if url.startswith("sqlite") else self.engine
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commit on success, roll back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only transaction: one consistent snapshot, no write lock."""
        with self._read_sessions() as session:
            yield session  # closing the session rolls the (autobegun) transaction back

    def conninfo(self) -> str:
        """The URL as libpq takes it (no SQLAlchemy driver suffix), for clients that are not SQLAlchemy:
        procrastinate's connection pool."""
        return make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def printable_url(url: str) -> str:
    """The URL without its password, for logs and terminals."""
    return make_url(url).render_as_string(hide_password=True)

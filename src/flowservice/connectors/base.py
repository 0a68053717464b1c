"""What the engine and the explore/test endpoints need from a source, and how sources fail.

Errors carry Transient/Terminal so retries branch on the kind of failure, never on its text.
Messages name what failed (host, bucket, path) and never a credential.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

from flowservice.errors import Terminal, Transient


class ConnectorError(Exception):
    """A source could not do what was asked; `str(error)` is safe to show a user."""


class SourceUnreachable(ConnectorError, Transient):
    """Network trouble, timeouts, a server that is down: worth retrying."""


class SourceRefused(ConnectorError, Terminal):
    """Bad credentials or no permission: a retry cannot help."""


class ObjectMissing(ConnectorError, Terminal):
    """The path, bucket or table named in the source connection does not exist."""


class PathNotAllowed(ConnectorError, Terminal):
    """A path that would leave the connector's root (`..`, absolute paths, symlinks out)."""


@dataclass(frozen=True, slots=True)
class SourceObject:
    """One file in a source: its path as the source names it, its size and last-modified time."""

    path: str
    size: int
    modified_ms: int


@dataclass(frozen=True, slots=True)
class ExploreItem:
    """A row of `GET /connections/{id}/explore?objectType=root|folder` (digest 8.3)."""

    type: Literal["folder", "file", "table"]
    name: str
    path: str

    def wire(self) -> dict[str, object]:
        is_file = self.type in ("file", "table")
        return {
            "type": self.type,
            "name": self.name,
            "path": self.path,
            "canPreview": is_file,
            "canFetchSchema": is_file,
        }


class FileSource(Protocol):
    """A source of files: a landing-zone folder, an S3 bucket, an SFTP server, the dummy."""

    def test(self) -> None:
        """Raise a ConnectorError when the source cannot be reached with these settings."""

    def list(self, path: str, *, recursive: bool = False) -> Iterator[SourceObject]:
        """The files at `path`: the file itself, or the files of the folder (and below, if recursive)."""

    def open(self, path: str) -> BinaryIO:
        """A stream of the file's bytes, read in chunks by the caller (never the whole file at once)."""

    def explore(self, path: str | None = None) -> builtins.list[ExploreItem]:
        """The folders and files directly under `path` (the root when None)."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class TableColumn:
    """A column of a source table, with the XDM type its values map to (digest 8.3)."""

    name: str
    source_type: str  # as the database names it, e.g. "timestamp without time zone"
    xdm_type: str  # "string" | "integer" | "number" | "boolean" | "array" | "object"
    xdm_format: str | None = None  # "date" | "date-time" for temporal columns

    def wire(self) -> dict[str, object]:
        xdm: dict[str, object] = {"type": self.xdm_type}
        if self.xdm_format:
            xdm["format"] = self.xdm_format
        meta = self.xdm_format or self.xdm_type
        # Adobe's answer gives the XDM type as `type` (digest 8.3); the database's own name stays inside
        return {"name": self.name, "type": self.xdm_type, "meta:xdmType": meta, "xdm": xdm}


class TableSource(Protocol):
    """A database whose tables are read incrementally: PostgreSQL, MySQL, MariaDB."""

    def test(self) -> None:
        """Raise a ConnectorError when the database cannot be reached with these settings."""

    def tables(self) -> builtins.list[ExploreItem]:
        """Tables and views the user can read, as `{"type": "table", "name", "path"}` items."""

    def columns(self, table: str) -> builtins.list[TableColumn]:
        """The columns of `table` (a name as `tables()` gives it in `path`)."""

    def preview(self, table: str, rows: int = 10) -> builtins.list[dict[str, Any]]:
        """The first rows of `table`, as JSON-able dicts."""

    def read(
        self,
        table: str,
        *,
        delta_column: str | None,
        window_ms: tuple[int, int] | None,
        batch_rows: int = 65_536,
    ) -> Iterator[pa.RecordBatch]:
        """Rows of `table` streamed in Arrow batches with a server-side cursor (bounded memory).

        With a delta column and a window, only rows with `window start < delta <= window end`
        (the window in epoch milliseconds, UTC), ordered by the delta column.
        """

    def close(self) -> None:
        """Release connections."""

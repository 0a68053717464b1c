"""Copy Activity: source files into the run's staging folder, streamed, counting files and bytes.

Staging makes the rest of the run independent of the source: promotion reads local files (fast,
seekable, re-readable after a crash), and a source that changes during the run cannot change
what this run ingests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flowservice.connectors.base import FileSource, SourceObject
from flowservice.errors import Terminal

CHUNK = 1 << 20


class FileTooLarge(Terminal):
    """A source file over the configured limit (FLOWSERVICE_MAX_FILE_BYTES)."""


@dataclass(frozen=True, slots=True)
class StagedFile:
    source: SourceObject
    staged: Path
    size: int  # bytes actually copied


def staged_name(index: int, source_path: str) -> str:
    """A flat, unique, safe local name that keeps the extension (format detection reads it)."""
    base = source_path.rstrip("/").rsplit("/", 1)[-1] or "file"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[-120:]
    return f"{index:06d}-{safe}"


def copy_files(
    source: FileSource,
    objects: Sequence[SourceObject],
    staging: Path,
    *,
    max_file_bytes: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[StagedFile]:
    """Copy each object in 1 MiB chunks; `progress(files_done, bytes_done)` after each file."""
    staging.mkdir(parents=True, exist_ok=True)
    staged: list[StagedFile] = []
    total = 0
    for index, obj in enumerate(objects):
        if obj.size > max_file_bytes:
            raise FileTooLarge(f"{obj.path} has {obj.size} bytes; the limit is {max_file_bytes}")
        target = staging / staged_name(index, obj.path)
        copied = 0
        with source.open(obj.path) as reader, open(target, "wb") as writer:
            while chunk := reader.read(CHUNK):
                copied += len(chunk)
                if copied > max_file_bytes:
                    raise FileTooLarge(
                        f"{obj.path} grew past the limit of {max_file_bytes} bytes while copying"
                    )
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        staged.append(StagedFile(obj, target, copied))
        total += copied
        if progress is not None:
            progress(len(staged), total)
    return staged

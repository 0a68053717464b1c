"""The lake: where staged source files, dataset batches and their diagnostics live.

Layout (DESIGN.md §5), under the lake root:

    {org}/{sandbox}/runs/{run}/staging/…                 files copied by the Copy Activity
    {org}/{sandbox}/datasets/{dataset}/batches/{batch}/  a committed batch: part-*.parquet,
        input_files, row_errors/part-*.json, row_error_samples.json
    {org}/{sandbox}/datasets/{dataset}/batches/.staging/{batch}.{attempt}/   a batch being written

A batch is written under its staging name and made visible by one rename, done while the run's
database row is locked and the batch's catalog row is inserted (services/execution.py): readers
see whole batches or none, and a crashed attempt leaves only staging folders behind.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

STAGING = ".staging"


class LakePathError(Exception):
    """A path that would leave its batch folder."""


@dataclass(frozen=True, slots=True)
class BatchPlace:
    org: str
    sandbox: str
    dataset_id: str
    batch_id: str


@dataclass(frozen=True, slots=True)
class LakeFile:
    path: str  # relative to the batch folder, "/"-separated
    size: int


class LocalLake:
    """A lake in a local folder (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def run_staging(self, org: str, sandbox: str, run_id: str) -> Path:
        return self.root / org / sandbox / "runs" / run_id / "staging"

    def batch_dir(self, place: BatchPlace) -> Path:
        return self._batches(place) / place.batch_id

    def batch_staging(self, place: BatchPlace, attempt: str) -> Path:
        path = self._batches(place) / STAGING / f"{place.batch_id}.{attempt}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def commit(self, staging: Path, place: BatchPlace) -> Path:
        """Make a staged batch visible under its final name, in one rename.

        A folder already there can only be left by an attempt that renamed and then died before its
        database commit (the caller holds the run's lease and no batch row exists): it is replaced.
        """
        final = self.batch_dir(place)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        _fsync_dir(final.parent)
        return final

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def files(self, place: BatchPlace, under: str = "") -> list[LakeFile]:
        base = self.batch_dir(place)
        start = self._inside(base, under) if under else base
        if not start.exists():
            return []
        if start.is_file():
            return [LakeFile(start.relative_to(base).as_posix(), start.stat().st_size)]
        return [
            LakeFile(p.relative_to(base).as_posix(), p.stat().st_size)
            for p in sorted(start.rglob("*"))
            if p.is_file()
        ]

    def open(self, place: BatchPlace, relative: str) -> BinaryIO:
        return self._inside(self.batch_dir(place), relative).open("rb")

    def exists(self, place: BatchPlace, relative: str) -> bool:
        try:
            return self._inside(self.batch_dir(place), relative).exists()
        except LakePathError:
            return False

    def is_folder(self, place: BatchPlace, relative: str) -> bool:
        return self._inside(self.batch_dir(place), relative).is_dir()

    def _batches(self, place: BatchPlace) -> Path:
        return self.root / place.org / place.sandbox / "datasets" / place.dataset_id / "batches"

    @staticmethod
    def _inside(base: Path, relative: str) -> Path:
        parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p == ".." or "\x00" in p for p in parts):
            raise LakePathError(f"'{relative[:200]}' is not a path inside the batch")
        candidate = base.joinpath(*parts)
        if not candidate.resolve().is_relative_to(base.resolve()):
            raise LakePathError(f"'{relative[:200]}' is not a path inside the batch")
        return candidate


def _fsync_dir(path: Path) -> None:
    """Persist the rename itself (the directory entry), not only the files."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

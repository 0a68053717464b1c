"""The lake: where staged source files, dataset batches and their diagnostics live.

`Lake` is what the control plane (services/execution.py, export.py, retention.py) asks of a lake;
two implement it: `LocalLake` here (a folder, the default) and `S3Lake` in engine/s3_lake.py (an
S3 bucket shared by workers on many machines). The engine's own work is on local disk in both:
the Copy Activity stages into `run_staging`, the Promotion Activity writes into `batch_staging`.

Layout of a local lake (DESIGN.md §5), under the lake root:

    {org}/{sandbox}/runs/{run}/staging/…                 files copied by the Copy Activity
    {org}/{sandbox}/datasets/{dataset}/batches/{batch}/  a committed batch: part-*.parquet,
        input_files, row_errors/part-*.json, row_error_samples.json
    {org}/{sandbox}/datasets/{dataset}/batches/.staging/{batch}.{attempt}/   a batch being written
    .retention-diagnostics                               retention's mark: diagnostics purged before

A batch is committed in four steps around the fenced transaction that inserts its catalog row
(services/execution.py): `publish` before it (nothing for a local lake: the staging folder is
already in the lake; an upload for S3), `commit` inside it, after the row insert (the rename here;
nothing for S3, whose commit point is the row itself), then `settle` once the outcome is known.
Readers see whole batches or none, and a crashed attempt leaves only staging behind.

Retention (services/retention.py) deletes only diagnostics, run staging and uploads no batch row
refers to, through the guarded `remove_diagnostics`, `remove_run_staging` and `remove_upload`;
nothing else here deletes a committed file.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

STAGING = ".staging"
DIAGNOSTICS = ("row_errors", "row_error_samples.json")  # all that remove_diagnostics may delete
RETENTION_MARK = ".retention-diagnostics"  # at the root, beside the orgs (whose ids never start with ".")


class LakePathError(Exception):
    """A path that would leave its batch folder."""


@dataclass(frozen=True, slots=True)
class BatchPlace:
    """Where a batch lives. `attempt` names the upload its batch row committed, in a lake without
    renames (S3); it is "" in a local lake, whose committed batch has one folder."""

    org: str
    sandbox: str
    dataset_id: str
    batch_id: str
    attempt: str = ""


@dataclass(frozen=True, slots=True)
class LakeFile:
    path: str  # relative to the batch folder, "/"-separated
    size: int


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """A batch one attempt of its run is writing, in a local folder (`path`)."""

    path: Path
    place: BatchPlace
    run_id: str
    attempt: str  # unique per attempt of the run (its lease epoch)


@dataclass(frozen=True, slots=True)
class PendingUpload:
    """An upload of a batch that has not been settled: committed by its batch row, or garbage."""

    run_id: str
    place: BatchPlace  # with the upload's attempt
    modified_ms: int  # when the upload began (epoch ms)


class Lake(Protocol):
    """What running, exporting and retaining batches need of a lake, wherever its bytes are."""

    def run_staging(self, org: str, sandbox: str, run_id: str) -> Path:
        """The local folder the Copy Activity stages a run's input into."""
        ...

    def discard(self, path: Path) -> None:
        """Delete a local staging folder, if it is there."""
        ...

    def batch_staging(self, place: BatchPlace, run_id: str, attempt: str) -> StagedBatch:
        """A new, empty local folder for the Promotion Activity's output."""
        ...

    def publish(self, staged: StagedBatch) -> BatchPlace:
        """Before the commit transaction: put the staged batch where readers of `place` could find it,
        invisible until the batch row is committed. The place returned is what the row records."""
        ...

    def commit(self, staged: StagedBatch, place: BatchPlace) -> None:
        """Inside the commit transaction, after the batch row is inserted: make the batch visible."""
        ...

    def settle(self, staged: StagedBatch, place: BatchPlace, *, committed: bool) -> None:
        """After the commit transaction, when its outcome is known: clean up behind the attempt, and,
        when the row was not written, delete what `publish` wrote."""
        ...

    def files(self, place: BatchPlace, under: str = "") -> list[LakeFile]: ...

    def open(self, place: BatchPlace, relative: str) -> BinaryIO:
        """A file of a committed batch as a stream (never read whole into memory)."""
        ...

    def exists(self, place: BatchPlace, relative: str) -> bool: ...

    def is_folder(self, place: BatchPlace, relative: str) -> bool: ...

    def remove_diagnostics(self, place: BatchPlace) -> int | None:
        """Delete a committed batch's `row_errors/` and `row_error_samples.json`, nothing else: the
        bytes freed, None if it had none."""
        ...

    def stale_runs(self, org: str, sandbox: str, before_ms: int) -> list[str]: ...

    def remove_run_staging(self, org: str, sandbox: str, run_id: str) -> int | None: ...

    def pending_uploads(self, org: str, sandbox: str, before_ms: int) -> list[PendingUpload]:
        """Uploads begun before `before_ms` and never settled (their attempt crashed or was fenced out
        before it could say): retention decides from the batch rows which are garbage."""
        ...

    def remove_upload(self, pending: PendingUpload, *, committed: bool) -> int:
        """Forget a pending upload; unless its batch row `committed` it, delete its files too: the
        bytes freed."""
        ...

    def diagnostics_purged_before(self) -> int: ...

    def set_diagnostics_purged_before(self, ms: int) -> None: ...

    def close(self) -> None: ...


class LocalLake:
    """A lake in a local folder (the embedded default): the commit is a rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def run_staging(self, org: str, sandbox: str, run_id: str) -> Path:
        return self.root / org / sandbox / "runs" / run_id / "staging"

    def batch_dir(self, place: BatchPlace) -> Path:
        return self._batches(place) / place.batch_id

    def batch_staging(self, place: BatchPlace, run_id: str, attempt: str) -> StagedBatch:
        """Inside the lake, beside the batch's final folder, so that the commit is one rename."""
        path = self._plain(
            self._batches(place) / STAGING / f"{place.batch_id}.{attempt}",
            place.org,
            place.sandbox,
            place.dataset_id,
            place.batch_id,
            attempt,
        )
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return StagedBatch(path, place, run_id, attempt)

    def publish(self, staged: StagedBatch) -> BatchPlace:
        return staged.place  # the staging folder is in the lake already, invisible by its name

    def commit(self, staged: StagedBatch, place: BatchPlace) -> None:
        """Make a staged batch visible under its final name, in one rename.

        A folder already there can only be left by an attempt that renamed and then died before its
        database commit (the caller holds the run's lease and no batch row exists): it is replaced.
        """
        final = self.batch_dir(place)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staged.path, final)
        _fsync_dir(final.parent)

    def settle(self, staged: StagedBatch, place: BatchPlace, *, committed: bool) -> None:
        if not committed:  # committed, the folder was renamed away
            self.discard(staged.path)

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        pass

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

    def remove_diagnostics(self, place: BatchPlace) -> int | None:
        """Delete a committed batch's failed-record diagnostics: the bytes freed, None if it had none.

        It runs beside readers of the batch's data, so it is guarded to delete nothing but the two
        diagnostics names directly in the batch folder (links among them unlinked, never followed):
        a wrong id or a bug upstream cannot reach the parts, `input_files` or another batch.
        """
        folder = self._plain(
            self.batch_dir(place), place.org, place.sandbox, place.dataset_id, place.batch_id
        )
        if not _is_real_dir(folder):
            return None
        found, freed = False, 0
        for name in DIAGNOSTICS:
            there, size = _remove(folder / name)
            found, freed = found or there, freed + size
        return freed if found else None

    def stale_runs(self, org: str, sandbox: str, before_ms: int) -> list[str]:
        """Ids of the tenant's run folders last changed before `before_ms` (epoch ms).

        A run folder changes when its staging folder is made or discarded, so its age is the time
        since its run last began copying or ended; whether the run is over is the caller's question.
        """
        runs = self._plain(self.root / org / sandbox / "runs", org, sandbox)
        try:
            entries = list(os.scandir(runs))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            entry.name
            for entry in entries
            if plain_name(entry.name)
            and entry.is_dir(follow_symlinks=False)
            and entry.stat(follow_symlinks=False).st_mtime_ns // 1_000_000 < before_ms
        )

    def remove_run_staging(self, org: str, sandbox: str, run_id: str) -> int | None:
        """Delete a run's staging folder, then its run folder if that is empty: the bytes freed, None
        if nothing was staged. Only for runs that are over: a running copy would lose its files."""
        staging = self._plain(self.run_staging(org, sandbox, run_id), org, sandbox, run_id)
        found, freed = _remove(staging)
        try:
            staging.parent.rmdir()  # normal runs discard their staging and leave this folder, empty
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                raise
        return freed if found else None

    def pending_uploads(self, org: str, sandbox: str, before_ms: int) -> list[PendingUpload]:
        return []  # nothing is uploaded: a batch is committed by renaming its staging folder

    def remove_upload(self, pending: PendingUpload, *, committed: bool) -> int:
        return 0

    def diagnostics_purged_before(self) -> int:
        """Retention's mark (epoch ms): diagnostics of batches created before it are gone already, so a
        purge looks only at the batches that aged past its limit since, not at the whole history."""
        try:
            return int((self.root / RETENTION_MARK).read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def set_diagnostics_purged_before(self, ms: int) -> None:
        path = self.root / RETENTION_MARK
        tmp = path.with_name(f"{RETENTION_MARK}.{uuid.uuid4().hex}")  # one per writer, threads included
        tmp.write_text(f"{ms}\n")
        os.replace(tmp, path)  # readers see the old mark or the new one, never half of one

    def _plain(self, path: Path, *names: str) -> Path:
        """`path`, made of `names` that are each one ordinary folder name, inside the lake's root."""
        if not all(plain_name(n) for n in names) or not path.resolve().is_relative_to(self.root.resolve()):
            raise LakePathError(f"'{'/'.join(names)[:200]}' is not a place in the lake")
        return path

    def _batches(self, place: BatchPlace) -> Path:
        return self.root / place.org / place.sandbox / "datasets" / place.dataset_id / "batches"

    @staticmethod
    def _inside(base: Path, relative: str) -> Path:
        candidate = base.joinpath(*relative_parts(relative))
        if not candidate.resolve().is_relative_to(base.resolve()):
            raise LakePathError(f"'{relative[:200]}' is not a path inside the batch")
        return candidate


def relative_parts(relative: str) -> list[str]:
    """The components of a path inside a batch ("a/./b" → a, b); one that would climb out raises."""
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." or "\x00" in p for p in parts):
        raise LakePathError(f"'{relative[:200]}' is not a path inside the batch")
    return parts


def plain_name(name: str) -> bool:
    """One path component that is not hidden (`.staging`, the mark), `..`, or a separator in disguise."""
    return bool(name) and not name.startswith(".") and not any(c in name for c in "/\\\x00")


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except FileNotFoundError:
        return False


def _remove(path: Path) -> tuple[bool, int]:
    """Delete a file, a link or a folder with all it holds, following no link: whether it was there, and
    the bytes of the files this call deleted (a purge running beside this one may delete some first)."""
    try:
        if not stat.S_ISDIR(path.lstat().st_mode):
            return True, _unlink(path)
    except FileNotFoundError:
        return False, 0
    freed = 0
    for parent, folders, files in os.walk(path, topdown=False):  # a folder's content before the folder
        for name in files + folders:  # a link to a folder is listed among the folders, never walked into
            entry = Path(parent, name)
            try:
                if stat.S_ISDIR(entry.lstat().st_mode):
                    entry.rmdir()
                else:
                    freed += _unlink(entry)
            except FileNotFoundError:
                pass
    with suppress(FileNotFoundError):
        path.rmdir()
    return True, freed


def _unlink(path: Path) -> int:
    """Delete one file or link; its bytes (a link frees none), 0 if someone deleted it first."""
    try:
        info = path.lstat()
        path.unlink()
    except FileNotFoundError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def _fsync_dir(path: Path) -> None:
    """Persist the rename itself (the directory entry), not only the files."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

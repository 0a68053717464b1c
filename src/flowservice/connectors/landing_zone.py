"""The Data Landing Zone: one folder per tenant that users drop files into and flows read from.

Adobe's zone is an Azure container the tenant uploads to; ours is the folder
`$FLOWSERVICE_HOME/landing-zone/{org}/{sandbox}` on the server. Its paths come from API callers, so
the one thing this module must get right is that no path leaves that folder: `..` segments, NUL
bytes, absolute paths and symlinks whose real target lies outside are refused with PathNotAllowed,
and the check is made on the resolved real path, not on the text.

Adobe writes zone paths as "dlz-user-container/data8.csv"; the container name is accepted and dropped,
so "dlz-user-container/a.csv", "/a.csv" and "a.csv" are the same file. Paths this module returns are
relative to the zone, "/"-separated, without a leading slash.

Names starting with "." are hidden: listings skip them, which is also how an upload in progress
(written under a hidden temporary name, then renamed into place) stays invisible until it is whole.
Symlinked folders are not descended into by recursive listings, so a link cycle cannot loop.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from flowservice.connectors.base import (
    ConnectorError,
    ExploreItem,
    ObjectMissing,
    PathNotAllowed,
    SourceObject,
    SourceRefused,
    SourceUnreachable,
)

CONTAINER = "dlz-user-container"


def _parts(path: str | None) -> builtins.list[str]:
    """The zone-relative segments of `path`, or PathNotAllowed if the text alone could escape."""
    if not path:
        return []
    if "\x00" in path:
        raise PathNotAllowed(f"landing-zone path {path!r} contains a NUL byte")
    if "\\" in path:
        # Not a separator on POSIX, but one on Windows: refusing it keeps the rules the same everywhere.
        raise PathNotAllowed(f"landing-zone path {path!r} contains a backslash; use '/' between folders")
    text = path[1:] if path.startswith("/") else path
    if text.startswith("/"):
        raise PathNotAllowed(f"landing-zone path {path!r} is absolute; paths are relative to the zone")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathNotAllowed(f"landing-zone path {path!r} contains '..'")
    if parts and parts[0] == CONTAINER:
        parts = parts[1:]
    return parts


def _mtime_ms(st: os.stat_result) -> int:
    return st.st_mtime_ns // 1_000_000


class LandingZone:
    """A tenant's landing zone; `root` is created when missing."""

    def __init__(self, root: Path) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            self.root = root.resolve(strict=True)
        except OSError as exc:
            raise SourceUnreachable(f"landing zone {root} is not usable: {exc.strerror}") from exc
        if not self.root.is_dir():
            raise SourceUnreachable(f"landing zone {root} is not a folder")

    # -- paths ---------------------------------------------------------------------------------------

    def _inside(self, real: Path) -> bool:
        return real == self.root or self.root in real.parents

    def _locate(self, path: str | None) -> tuple[str, Path]:
        """(zone-relative path, real path) of `path`, refusing anything whose real path is outside."""
        parts = _parts(path)
        try:
            real = self.root.joinpath(*parts).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
            raise PathNotAllowed(f"landing-zone path {path!r} cannot be resolved (a symlink loop?)") from exc
        if not self._inside(real):
            raise PathNotAllowed(f"landing-zone path {path!r} leads outside the landing zone")
        return "/".join(parts), real

    def _entry(self, entry: os.DirEntry[str]) -> tuple[str, os.stat_result] | None:
        """("file" | "folder", stat) of a visible entry whose real path stays in the zone, else None."""
        if entry.name.startswith("."):
            return None
        try:
            if entry.is_symlink() and not self._inside(Path(entry.path).resolve()):
                return None
            st = entry.stat()  # follows a link, now known to stay inside
        except (OSError, RuntimeError):  # vanished meanwhile, a dangling link, a link loop
            return None
        if stat.S_ISDIR(st.st_mode):
            return "folder", st
        if stat.S_ISREG(st.st_mode):
            return "file", st
        return None  # fifos, sockets, devices: never data

    def _scan(self, folder: Path) -> builtins.list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as entries:
                return builtins.list(entries)
        except PermissionError as exc:
            raise SourceRefused(f"landing-zone folder {self._show(folder)!r} is not readable") from exc
        except FileNotFoundError as exc:
            raise ObjectMissing(f"landing-zone folder {self._show(folder)!r} does not exist") from exc
        except OSError as exc:
            raise SourceUnreachable(f"landing-zone folder {self._show(folder)!r}: {exc.strerror}") from exc

    def _show(self, real: Path) -> str:
        return real.relative_to(self.root).as_posix() if self._inside(real) else "?"

    # -- FileSource ----------------------------------------------------------------------------------

    def test(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.R_OK | os.X_OK):
            raise SourceUnreachable(f"landing zone {self.root} is missing or not readable")

    def list(self, path: str, *, recursive: bool = False) -> Iterator[SourceObject]:
        rel, real = self._locate(path)
        try:
            st = real.stat()
        except FileNotFoundError:
            raise ObjectMissing(f"{rel or '/'!r} does not exist in the landing zone") from None
        except OSError as exc:
            raise SourceUnreachable(f"{rel!r} in the landing zone: {exc.strerror}") from exc
        if stat.S_ISREG(st.st_mode):
            return iter([SourceObject(rel, st.st_size, _mtime_ms(st))])
        if not stat.S_ISDIR(st.st_mode):
            raise ObjectMissing(f"{rel!r} in the landing zone is neither a file nor a folder")
        found: builtins.list[SourceObject] = []
        self._collect(real, rel, recursive, found)
        found.sort(key=lambda o: o.path)
        return iter(found)

    def _collect(self, folder: Path, rel: str, recursive: bool, found: builtins.list[SourceObject]) -> None:
        for entry in self._scan(folder):
            kind = self._entry(entry)
            if kind is None:
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            if kind[0] == "file":
                found.append(SourceObject(child, kind[1].st_size, _mtime_ms(kind[1])))
            elif recursive and not entry.is_symlink():
                self._collect(Path(entry.path), child, recursive, found)

    def open(self, path: str) -> BinaryIO:
        rel, real = self._locate(path)
        if real.is_dir():
            raise ObjectMissing(f"{rel or '/'!r} in the landing zone is a folder, not a file")
        try:
            if not stat.S_ISREG(real.stat().st_mode):
                raise ObjectMissing(f"{rel!r} in the landing zone is not a regular file")
            return real.open("rb")
        except FileNotFoundError:
            raise ObjectMissing(f"{rel!r} does not exist in the landing zone") from None
        except PermissionError as exc:
            raise SourceRefused(f"{rel!r} in the landing zone is not readable") from exc
        except OSError as exc:
            raise SourceUnreachable(f"{rel!r} in the landing zone: {exc.strerror}") from exc

    def local_file(self, path: str) -> Path:
        """The file on this machine's disk, for a staging that links instead of copying.

        The zone is treated like an object store: files are replaced, never edited in place
        (`flowservice landing-zone upload` writes a new file and renames it over the old one), so
        a link to today's file keeps today's content.
        """
        rel, real = self._locate(path)
        if not real.is_file():
            raise ObjectMissing(f"{rel!r} does not exist in the landing zone")
        return real

    def explore(self, path: str | None = None) -> builtins.list[ExploreItem]:
        rel, real = self._locate(path)
        if real.is_file():
            raise ObjectMissing(f"{rel!r} in the landing zone is a file, not a folder")
        if not real.is_dir():
            raise ObjectMissing(f"{rel or '/'!r} does not exist in the landing zone")
        items: builtins.list[ExploreItem] = []
        for entry in self._scan(real):
            kind = self._entry(entry)
            if kind is not None:
                child = f"{rel}/{entry.name}" if rel else entry.name
                items.append(ExploreItem("folder" if kind[0] == "folder" else "file", entry.name, child))
        items.sort(key=lambda i: (i.type != "folder", i.name))
        return items

    def close(self) -> None:
        """Nothing is held open between calls."""


def upload(root: Path, source: Path, dest: str | None) -> str:
    """Copy the local file `source` into the zone at `dest`; return its zone-relative path.

    `dest` None puts the file at the top with its own name; a `dest` ending in "/" or naming an
    existing folder puts it inside that folder. The copy is written under a hidden temporary name in
    the destination folder and renamed over the target in one step, so a reader (or a flow run) sees
    the old file or the whole new one, never a part.
    """
    zone = LandingZone(root)
    if not source.is_file():
        raise ObjectMissing(f"{source} is not a file that can be uploaded")
    rel, real = zone._locate(dest)
    if not dest or dest.endswith("/") or real.is_dir():
        rel = f"{rel}/{source.name}" if rel else source.name
        zone._locate(rel)
    folder_rel, _, name = rel.rpartition("/")
    if name.startswith("."):
        raise ConnectorError(f"landing-zone name {name!r} starts with '.', so no listing would show it")
    # The target's own name is not resolved: renaming over a link replaces the link, not what it points to.
    _, folder = zone._locate(folder_rel)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceUnreachable(f"cannot create landing-zone folder {folder_rel!r}: {exc.strerror}") from exc
    # A link may have appeared in the folder's path meanwhile: check where the folder really is.
    _, folder = zone._locate(folder_rel)
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".upload")
    except OSError as exc:
        raise SourceUnreachable(
            f"cannot write into landing-zone folder {folder_rel!r}: {exc.strerror}"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, folder / name)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, PermissionError):
            raise SourceRefused(
                f"cannot copy {source} to landing-zone path {rel!r}: permission denied"
            ) from exc
        if isinstance(exc, OSError):
            raise SourceUnreachable(
                f"cannot copy {source} to landing-zone path {rel!r}: {exc.strerror}"
            ) from exc
        raise
    _sync_folder(folder)
    return rel


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; best effort, as not every platform can open a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
